"""Schemathesis over the notifications API's published OpenAPI document: whatever a
client sends — with no token, or a valid operator, customer or freelancer token — the API
answers 2xx-4xx, never a 5xx."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
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
from cairn_notifications.config import Settings
from cairn_notifications.entrypoints import api
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

schemathesis = pytest.importorskip("schemathesis")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(settings: Settings) -> Iterator[str]:
    """The API on a free port in its own thread and event loop (schemathesis calls it
    synchronously over real HTTP)."""
    with serve_in_thread(api.create(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def callers(settings: Settings) -> dict[str, dict[str, str]]:
    market = f"mkt_{uuid.uuid4().hex[:10]}"

    def bearer(role: Any) -> dict[str, str]:
        token = mint_token(settings, sub=f"usr_{role}", role=role, marketplace=market)
        return {"Authorization": f"Bearer {token}"}

    return {
        "anonymous": {},
        "operator": bearer("operator"),
        "customer": bearer("customer"),
        "freelancer": bearer("freelancer"),
    }


# The document the app publishes (building the app opens no connection).
DOCUMENT = api.create(Settings(database_url="sqlite+aiosqlite://", jwt_secret="x" * 32)).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@hypothesis_settings(
    max_examples=int(os.environ.get("NOTIFICATIONS_FUZZ_EXAMPLES", "10")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_request_gets_a_server_error(
    case: Any, served: str, callers: dict[str, dict[str, str]]
) -> None:
    responses = assert_no_server_error(case, served, callers)
    for who, response in responses.items():
        if case.path == "/v1/deliveries" and case.method.upper() == "GET" and who != "operator":
            assert response.status_code in (401, 403, 422), "deliveries are for operators"


def test_an_offset_past_any_page_is_a_clear_422_not_a_server_error(
    served: str, callers: dict[str, dict[str, str]]
) -> None:
    """Found by the fuzz above: an offset beyond PostgreSQL's bigint answered 500."""
    r = httpx.get(
        f"{served}/v1/deliveries",
        params={"offset": "12754031505801920512"},
        headers=callers["operator"],
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "request.invalid"


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
    max_examples=int(os.environ.get("NOTIFICATIONS_FUZZ_EXAMPLES", "10")) * 3,
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
