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
from cairn_devstack.testing import assert_no_server_error, serve_in_thread
from hypothesis import HealthCheck, settings

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
schema = schemathesis.openapi.from_dict(
    create_api(Settings(database_url="sqlite+aiosqlite://", jwt_secret="x" * 32)).openapi()
)


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
