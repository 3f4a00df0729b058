"""The Stripe webhook endpoint: only genuine, fresh events count, and each counts once."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx
import pytest
import stripe
from aiokafka import AIOKafkaProducer
from cairn_devstack.testing import StripeServer
from cairn_payments.adapters import repository as repo
from cairn_payments.adapters.tables import StripeEventRow
from cairn_payments.config import Settings
from cairn_payments.service import webhooks
from cairn_payments.service.context import PaymentsContext
from cairn_schemas.events import (
    PaymentActionRequired,
    PaymentChargebackOpened,
    PaymentFunded,
    PaymentRefunded,
    PaymentReleased,
    PaymentReleasePending,
)
from sqlmodel import select

from .conftest import WEBHOOK_SECRET, PaymentEvents, send
from .helpers import CARD_SCA, Deal, balances_of, escrow_of, onboard_freelancer, save_card

pytestmark = pytest.mark.integration


@pytest.fixture
async def http(api: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        yield client


def signed(payload: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """A Stripe-Signature header for ``payload``."""
    ts = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def dispute_event(charge_id: str, amount: int) -> bytes:
    event: dict[str, Any] = {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": "charge.dispute.created",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": f"dp_{uuid.uuid4().hex[:12]}",
                "object": "dispute",
                "charge": charge_id,
                "amount": amount,
                "reason": "fraudulent",
            }
        },
    }
    return json.dumps(event).encode()


async def _post(http: httpx.AsyncClient, payload: bytes, signature: str) -> httpx.Response:
    return await http.post(
        "/v1/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )


async def _funded(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
    deal: Deal,
) -> PaymentFunded:
    await save_card(http, settings, deal, stripe_client)
    await send(producer, deal.funding_requested())
    funded: PaymentFunded = (await payment_events.wait_for(deal.milestone_id, PaymentFunded))[0]
    return funded


async def test_bad_signature_and_old_timestamp_are_refused_and_change_nothing(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=2_000)
    funded = await _funded(http, settings, stripe_client, producer, payment_events, deal)
    payload = dispute_event(funded.charge_id, 2_000)

    forged = await _post(http, payload, signed(payload, secret="whsec_someone_else"))
    stale = await _post(http, payload, signed(payload, at=int(time.time()) - 301))
    unsigned = await http.post(
        "/v1/stripe/webhook", content=payload, headers={"Content-Type": "application/json"}
    )

    for response in (forged, stale, unsigned):
        assert response.status_code == 400
        assert response.json()["code"] == "stripe.bad_signature"
    await asyncio.sleep(0.5)
    escrow = await escrow_of(http, settings, deal)
    assert (escrow["state"], escrow["frozen"], escrow["held"]) == ("funded", False, 2_000)


async def test_chargeback_freezes_the_escrow_once_even_when_replayed(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=2_500)
    funded = await _funded(http, settings, stripe_client, producer, payment_events, deal)
    payload = dispute_event(funded.charge_id, 2_500)

    first = await _post(http, payload, signed(payload))
    replay = await _post(http, payload, signed(payload))
    assert first.status_code == replay.status_code == 200
    assert replay.json()["duplicate"] is True

    opened = (await payment_events.wait_for(deal.milestone_id, PaymentChargebackOpened))[0]
    assert opened.funds_released is False
    escrow = await escrow_of(http, settings, deal)
    assert (escrow["frozen"], escrow["held"], escrow["chargeback"]) == (True, 0, 2_500)

    # A frozen escrow is not released.
    await send(producer, deal.release_requested())
    await asyncio.sleep(1.0)
    await payment_events.poll()
    assert not payment_events.of(deal.milestone_id, PaymentReleased)
    assert len(payment_events.of(deal.milestone_id, PaymentChargebackOpened)) == 1
    books = await balances_of(http, settings, deal)
    assert books[f"chargebacks:{deal.marketplace_id}"] == 2_500


@pytest.mark.parametrize(
    ("policy", "freelancer_owes", "platform_bears"),
    [("freelancer", 9_000, 1_000), ("platform", 0, 10_000)],
)
async def test_chargeback_after_release_follows_the_marketplace_policy(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
    policy: Literal["freelancer", "platform"],
    freelancer_owes: int,
    platform_bears: int,
) -> None:
    deal = dataclasses.replace(Deal.new(amount=10_000), chargeback_after_release=policy)
    funded = await _funded(http, settings, stripe_client, producer, payment_events, deal)
    account = await onboard_freelancer(http, settings, deal)
    stripe_server.enable_payouts(account)
    await asyncio.sleep(0.5)
    await send(producer, deal.release_requested())
    await payment_events.wait_for(deal.milestone_id, PaymentReleased)

    payload = dispute_event(funded.charge_id, 10_000)
    assert (await _post(http, payload, signed(payload))).status_code == 200
    opened = (await payment_events.wait_for(deal.milestone_id, PaymentChargebackOpened))[0]

    assert (opened.funds_released, opened.owed_by_freelancer) == (True, freelancer_owes)
    books = await balances_of(http, settings, deal)
    assert books.get(f"freelancer_receivable:{deal.freelancer_id}", 0) == -freelancer_owes
    # The platform kept a 1,000 fee; under the freelancer policy it covers the rest.
    assert books[f"platform_fees:{deal.marketplace_id}"] == 1_000 - platform_bears
    escrow = await escrow_of(http, settings, deal)
    assert (escrow["chargeback_after_release"], escrow["chargeback_owed_by_freelancer"]) == (
        policy,
        freelancer_owes,
    )


async def test_every_webhook_delivered_again_changes_nothing(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
    ctx: PaymentsContext,
) -> None:
    # A milestone that went through SCA, a waiting release and the account becoming ready:
    # localstripe sent payment_intent.*, account.updated and the rest to the API.
    deal = Deal.new(amount=4_000)
    await save_card(http, settings, deal, stripe_client, CARD_SCA)
    await send(producer, deal.funding_requested())
    action = (await payment_events.wait_for(deal.milestone_id, PaymentActionRequired))[0]
    async with httpx.AsyncClient(base_url=stripe_server.api_base) as s:
        await s.post(
            f"/v1/payment_intents/{action.payment_intent_id}/_authenticate",
            data={"client_secret": action.client_secret, "success": "true"},
            headers={"Authorization": f"Bearer {stripe_server.api_key}"},
        )
    await payment_events.wait_for(deal.milestone_id, PaymentFunded)
    account = await onboard_freelancer(http, settings, deal)
    await send(producer, deal.release_requested())
    await payment_events.wait_for(deal.milestone_id, PaymentReleasePending)
    stripe_server.enable_payouts(account)
    await payment_events.wait_for(deal.milestone_id, PaymentReleased)

    async def stored_events() -> list[StripeEventRow]:
        async with ctx.db.transaction() as session:
            return [
                row
                for row in (await session.exec(select(StripeEventRow))).all()
                if deal.milestone_id in row.payload or account in row.payload
            ]

    # The release may come from the reconciler asking Stripe before the (delayed)
    # account.updated webhook lands: wait for the webhook itself.
    async with asyncio.timeout(15):
        while not {"payment_intent.succeeded", "account.updated"} <= {
            e.type for e in await stored_events() if e.processed_at is not None
        }:
            await asyncio.sleep(0.1)
    stored = await stored_events()
    stats = stripe_server.stats()
    escrow = await escrow_of(http, settings, deal)
    books = await balances_of(http, settings, deal)
    seen = len(payment_events.of(deal.milestone_id))

    for row in stored:
        # The same event again, and the same news under a fresh event id.
        again = await _post(http, row.payload.encode(), signed(row.payload.encode()))
        assert again.status_code == 200
        assert again.json()["duplicate"] is True
        copy = json.loads(row.payload)
        copy["id"] = f"evt_{uuid.uuid4().hex[:16]}"
        body = json.dumps(copy).encode()
        assert (await _post(http, body, signed(body))).status_code == 200
    await asyncio.sleep(1.5)
    await payment_events.poll()

    assert stripe_server.stats() == stats
    assert await escrow_of(http, settings, deal) == escrow
    assert await balances_of(http, settings, deal) == books
    assert len(payment_events.of(deal.milestone_id)) == seen


async def test_our_own_refund_is_not_booked_again_by_its_webhook_racing_it(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
    ctx: PaymentsContext,
) -> None:
    """The API handles ``charge.refunded`` while the worker is refunding: it looks the
    escrow up by charge (still funded), then waits for the worker's lock. Once it has the
    lock it must judge the escrow as the worker left it (refunded by us), not by its first
    read — that read would book the same refund a second time, as made outside Cairn."""
    deal = Deal.new(amount=6_000)
    funded = await _funded(http, settings, stripe_client, producer, payment_events, deal)
    async with ctx.db.transaction() as session:
        seen = await repo.escrow_by_charge(session, funded.charge_id)  # the webhook's lookup
        assert seen is not None
        assert seen.state == "funded"
        await send(producer, deal.refund_ordered())
        await payment_events.wait_for(deal.milestone_id, PaymentRefunded)  # committed
        charge = {"id": funded.charge_id, "amount_refunded": 6_000}
        assert await webhooks._charge_refunded(ctx, session, charge) is None

    escrow = await escrow_of(http, settings, deal)
    assert (escrow["state"], escrow["refunded"], escrow["held"]) == ("refunded", 6_000, 0)
    assert escrow["refund_id"] is not None
    assert not escrow["refund_id"].startswith("external_")
    books = await balances_of(http, settings, deal)
    assert books[f"escrow:{deal.milestone_id}"] == 0
    assert len(payment_events.of(deal.milestone_id, PaymentRefunded)) == 1


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"evt"', b"null"], ids=["array", "string", "null"])
async def test_a_signed_body_that_is_not_an_event_object_is_a_400_not_a_500(
    http: httpx.AsyncClient, payload: bytes
) -> None:
    """Issue 16: a correctly signed JSON array answered 500 (the SDK's parser failed)."""
    response = await _post(http, payload, signed(payload))
    assert (response.status_code, response.json()["code"]) == (400, "stripe.bad_signature")
    assert "not a Stripe event" in response.json()["detail"]
