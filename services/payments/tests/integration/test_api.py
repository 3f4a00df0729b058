"""Who may see and do what through the payments API."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import stripe
from aiokafka import AIOKafkaProducer
from cairn_payments.config import Settings
from cairn_schemas.events import PaymentFunded

from .conftest import PaymentEvents, send
from .helpers import Deal, save_card, tokenised_card
from .test_webhooks import signed

pytestmark = pytest.mark.integration


@pytest.fixture
async def http(api: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_escrow_is_visible_to_its_parties_only_and_the_books_to_operators(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=1_500)
    await save_card(http, settings, deal, stripe_client)
    await send(producer, deal.funding_requested())
    await payment_events.wait_for(deal.milestone_id, PaymentFunded)
    path = f"/v1/escrow/{deal.milestone_id}"

    for role in ("customer", "freelancer", "operator"):
        r = await http.get(path, headers=auth(deal.token(settings, role)))
        assert r.status_code == 200, (role, r.text)
    stranger = Deal.new()
    stranger.marketplace_id = deal.marketplace_id
    r = await http.get(path, headers=auth(stranger.token(settings, "customer")))
    assert r.status_code == 404
    other_marketplace = Deal.new()
    r = await http.get(path, headers=auth(other_marketplace.token(settings, "operator")))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")

    for route in ("/v1/ledger/balances", "/v1/ledger/entries", "/v1/reconciliation/report"):
        r = await http.get(route, headers=auth(deal.token(settings, "customer")))
        assert r.status_code == 403
    r = await http.get(
        "/v1/ledger/entries",
        params={"milestone_id": deal.milestone_id},
        headers=auth(deal.token(settings, "operator")),
    )
    entries = r.json()
    assert [e["kind"] for e in entries] == ["charge"]
    assert sum(p["amount"] for p in entries[0]["postings"]) == 0


async def test_roles_and_bad_cards_are_refused_clearly(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    deal = Deal.new()
    r = await http.post(
        "/v1/payment-profiles/me/setup-intents", headers=auth(deal.token(settings, "freelancer"))
    )
    assert r.status_code == 403
    r = await http.post(
        "/v1/payment-profiles/me/onboarding-link",
        json={"refresh_url": "https://x", "return_url": "https://y"},
        headers=auth(deal.token(settings, "customer")),
    )
    assert r.status_code == 403
    customer = auth(deal.token(settings, "customer"))
    r = await http.post(
        "/v1/payment-profiles/me/payment-methods",
        json={"payment_method_id": "nope"},
        headers=customer,
    )
    assert r.status_code == 422
    r = await http.post(
        "/v1/payment-profiles/me/payment-methods",
        json={"payment_method_id": "pm_missing123"},
        headers=customer,
    )
    assert r.status_code == 422
    assert r.json()["code"].startswith("stripe.")
    r = await http.get("/v1/payment-profiles/me")
    assert r.status_code == 401


async def test_setup_intent_succeeded_webhook_records_the_default_card(
    http: httpx.AsyncClient, settings: Settings, stripe_client: stripe.StripeClient
) -> None:
    deal = Deal.new()
    customer = auth(deal.token(settings, "customer"))
    created = (await http.post("/v1/payment-profiles/me/setup-intents", headers=customer)).json()
    pm = tokenised_card(stripe_client, "4242424242424242")
    event = {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": "setup_intent.succeeded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": created["setup_intent_id"],
                "object": "setup_intent",
                "customer": created["customer_id"],
                "payment_method": pm,
                "status": "succeeded",
            }
        },
    }
    body = json.dumps(event).encode()
    r = await http.post(
        "/v1/stripe/webhook",
        content=body,
        # As Stripe sends it (a body of another type is refused with 415).
        headers={
            "Stripe-Signature": signed(body),
            "Content-Type": "application/json; charset=utf-8",
        },
    )
    assert r.status_code == 200

    for _ in range(50):
        profiles = (await http.get("/v1/payment-profiles/me", headers=customer)).json()
        if profiles and profiles[0]["default_payment_method_id"] == pm:
            break
        await asyncio.sleep(0.1)
    assert profiles[0]["default_payment_method_id"] == pm
