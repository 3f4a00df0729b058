"""Schemathesis over the published OpenAPI document: whatever a client sends — with a
valid operator or customer token, or none — the API answers 2xx-4xx, never a 5xx."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cairn_chassis.auth import mint_token
from cairn_contracts.config import Settings
from cairn_contracts.entrypoints.api import create_api
from cairn_devstack.testing import (
    CONTROL_CHARACTERS,
    WRONG_CONTENT_TYPES,
    assert_no_server_error,
    assert_refuses_bad_input,
    operations_with_a_body,
    serve_in_thread,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import settings_body, uid

schemathesis = pytest.importorskip("schemathesis")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(settings: Settings) -> Iterator[str]:
    """The API on a free port, in its own thread and event loop (schemathesis calls it
    synchronously over real HTTP)."""
    with serve_in_thread(create_api(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def callers(served: str, settings: Settings) -> dict[str, dict[str, str]]:
    """No token, and valid tokens of an operator and a customer of a set-up marketplace."""
    market = uid("mkt")

    def bearer(role: Any) -> dict[str, str]:
        token = mint_token(
            settings, sub=uid(role[:3]), role=role, marketplace=market, email="a@b.test", name="A"
        )
        return {"Authorization": f"Bearer {token}"}

    operator = bearer("operator")
    r = httpx.put(
        f"{served}/v1/marketplaces/{market}/settings", json=settings_body(), headers=operator
    )
    assert r.status_code == 200, r.text
    return {"anonymous": {}, "operator": operator, "customer": bearer("customer")}


# The document the app publishes (building the app opens no connection).
DOCUMENT = create_api(Settings(database_url="sqlite+aiosqlite://", jwt_secret="x" * 32)).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("CONTRACTS_FUZZ_EXAMPLES", "6")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_request_gets_a_server_error(
    case: Any, served: str, callers: dict[str, dict[str, str]]
) -> None:
    assert_no_server_error(case, served, callers)


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
@settings(
    max_examples=int(os.environ.get("CONTRACTS_FUZZ_EXAMPLES", "6")) * 3,
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
