"""Schemathesis over the payments API's published OpenAPI document: whatever a client
sends — with no token, or a valid customer, freelancer or operator token — the API
answers 2xx-4xx, never a 5xx, and a Stripe webhook without a valid signature changes
nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from cairn_chassis.auth import mint_token
from cairn_devstack.testing import (
    CONTROL_CHARACTERS,
    WRONG_CONTENT_TYPES,
    assert_no_server_error,
    assert_refuses_bad_input,
    operations_with_a_body,
    serve_in_thread,
)
from cairn_payments.config import Settings
from cairn_payments.entrypoints.api import create_app
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from .helpers import new_id

schemathesis = pytest.importorskip("schemathesis")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(settings: Settings) -> Iterator[str]:
    """The API on a free port in its own thread and event loop, with its own database
    pool and Stripe client (schemathesis calls it synchronously over real HTTP)."""
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def callers(settings: Settings) -> dict[str, dict[str, str]]:
    market = new_id("mkt")

    def bearer(role: Any) -> dict[str, str]:
        token = mint_token(
            settings,
            sub=new_id(role[:3]),
            role=role,
            marketplace=market,
            email="a@b.test",
            name="A",
        )
        return {"Authorization": f"Bearer {token}"}

    return {
        "anonymous": {},
        "customer": bearer("customer"),
        "freelancer": bearer("freelancer"),
        "operator": bearer("operator"),
    }


# The document the app publishes (building the app opens no connection).
DOCUMENT = create_app(
    Settings(
        database_url="sqlite+aiosqlite://",
        jwt_secret="x" * 32,
        stripe_api_key="sk_test_documents_only",
        stripe_webhook_secret="whsec_documents_only",
    )
).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@hypothesis_settings(
    max_examples=int(os.environ.get("PAYMENTS_FUZZ_EXAMPLES", "6")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_request_gets_a_server_error(
    case: Any, served: str, callers: dict[str, dict[str, str]]
) -> None:
    responses = assert_no_server_error(case, served, callers)
    for response in responses.values():
        if case.path == "/v1/stripe/webhook" and case.method.upper() == "POST":
            assert response.status_code == 400, "an unsigned webhook is refused"
            assert response.json()["code"] == "stripe.bad_signature"


BAD_INPUT_OPERATIONS = operations_with_a_body(DOCUMENT)


@given(
    operation=st.sampled_from(BAD_INPUT_OPERATIONS),
    kind=st.sampled_from(["control", "media_type", "oversized"]),
    text=st.tuples(
        st.text(st.characters(codec="utf-8", categories=["L", "N", "Zs"]), max_size=8),
        st.sampled_from(CONTROL_CHARACTERS),
    ).map("".join),
    content_type=st.sampled_from(WRONG_CONTENT_TYPES),
    extra=st.integers(1, 65_536),
)
@hypothesis_settings(
    max_examples=int(os.environ.get("PAYMENTS_FUZZ_EXAMPLES", "6")) * 3,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_unicode_controls_wrong_content_types_and_oversized_bodies_are_refused(
    operation: tuple[str, str],
    kind: str,
    text: str,
    content_type: str,
    extra: int,
    served: str,
    callers: dict[str, dict[str, str]],
    settings: Any,
) -> None:
    """Issue 16: every operation with a body refuses a control character in its text (422
    with ``errors``), a body that is not JSON (415) and one over the limit (413): never a
    5xx, never an acceptance."""
    method, path = operation
    assert_refuses_bad_input(
        served,
        method,
        path,
        callers["operator"],
        kind=kind,
        text=text,
        content_type=content_type,
        size=settings.http_max_body_bytes + extra,
    )
