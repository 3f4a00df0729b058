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
from cairn_devstack.testing import assert_no_server_error, serve_in_thread
from cairn_notifications.config import Settings
from cairn_notifications.entrypoints import api
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

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
schema = schemathesis.openapi.from_dict(
    api.create(Settings(database_url="sqlite+aiosqlite://", jwt_secret="x" * 32)).openapi()
)


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
