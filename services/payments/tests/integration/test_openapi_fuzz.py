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
from cairn_devstack.testing import assert_no_server_error, serve_in_thread
from cairn_payments.config import Settings
from cairn_payments.entrypoints.api import create_app
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

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
schema = schemathesis.openapi.from_dict(
    create_app(
        Settings(
            database_url="sqlite+aiosqlite://",
            jwt_secret="x" * 32,
            stripe_api_key="sk_test_documents_only",
            stripe_webhook_secret="whsec_documents_only",
        )
    ).openapi()
)


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
