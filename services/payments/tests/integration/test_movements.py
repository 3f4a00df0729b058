"""Release, refund and split against localstripe, each delivered twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import stripe
from aiokafka import AIOKafkaProducer
from cairn_devstack.testing import StripeServer
from cairn_payments.config import Settings
from cairn_schemas.events import (
    PaymentActionRequired,
    PaymentFunded,
    PaymentRefunded,
    PaymentReleased,
    PaymentReleasePending,
    PaymentSplitSettled,
)

from .conftest import PaymentEvents, send
from .helpers import (
    CARD_SCA,
    Deal,
    balances_of,
    escrow_of,
    onboard_freelancer,
    report_of,
    save_card,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def http(api: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        yield client


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


async def _wait_payouts(http: httpx.AsyncClient, settings: Settings, deal: Deal) -> None:
    headers = {"Authorization": f"Bearer {deal.token(settings, 'freelancer')}"}
    for _ in range(100):
        r = await http.get("/v1/payment-profiles/me", headers=headers)
        if any(p["payouts_enabled"] for p in r.json()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("account.updated never reached payments")


async def test_release_pays_the_freelancer_less_the_fee_once(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=10_000)
    funded = await _funded(http, settings, stripe_client, producer, payment_events, deal)
    account = await onboard_freelancer(http, settings, deal)
    stripe_server.enable_payouts(account)
    await _wait_payouts(http, settings, deal)
    before = stripe_server.stats()

    event = deal.release_requested()
    event_id = await send(producer, event)
    await send(producer, event, event_id=event_id)
    released = (await payment_events.wait_for(deal.milestone_id, PaymentReleased))[0]

    assert (released.amount_to_freelancer, released.platform_fee) == (9_000, 1_000)
    transfer = stripe_client.v1.transfers.retrieve(released.transfer_id)
    assert transfer.amount == 9_000
    assert transfer.destination == account
    assert transfer.source_transaction == funded.charge_id
    await asyncio.sleep(1.0)
    assert stripe_server.stats()["transfers"] == before["transfers"] + 1
    escrow = await escrow_of(http, settings, deal)
    assert (escrow["state"], escrow["held"], escrow["ledger_balance"]) == ("released", 0, 0)
    books = await balances_of(http, settings, deal)
    assert books[f"platform_fees:{deal.marketplace_id}"] == 1_000
    assert books[f"freelancer_payable:{deal.freelancer_id}"] == 9_000
    report = await report_of(http, settings, deal)
    assert report["ok"] is True, report
    assert report["lines"][0]["stripe_transferred"] == 9_000
    assert report["totals"]["USD"] == {"ledger_net": 1_000, "stripe_balance_net": 1_000}


async def test_refund_gives_everything_back_once(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=7_500)
    funded = await _funded(http, settings, stripe_client, producer, payment_events, deal)
    before = stripe_server.stats()

    event = deal.refund_ordered()
    event_id = await send(producer, event)
    await send(producer, event, event_id=event_id)
    await send(producer, event)  # the same order under another event id
    refunded = (await payment_events.wait_for(deal.milestone_id, PaymentRefunded))[0]

    assert refunded.charge_id == funded.charge_id
    charge = stripe_client.v1.charges.retrieve(funded.charge_id)
    assert charge.amount_refunded == 7_500
    await asyncio.sleep(1.0)
    assert stripe_server.stats()["refunds"] == before["refunds"] + 1
    assert len(payment_events.of(deal.milestone_id, PaymentRefunded)) == 1
    escrow = await escrow_of(http, settings, deal)
    assert (escrow["state"], escrow["refunded"], escrow["held"]) == ("refunded", 7_500, 0)


async def test_split_transfers_one_part_and_refunds_the_rest_exactly(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=10_001)
    funded = await _funded(http, settings, stripe_client, producer, payment_events, deal)
    account = await onboard_freelancer(http, settings, deal)
    stripe_server.enable_payouts(account)
    await _wait_payouts(http, settings, deal)

    event = deal.split_ordered(to_freelancer=6_001)
    event_id = await send(producer, event)
    await send(producer, event, event_id=event_id)
    settled = (await payment_events.wait_for(deal.milestone_id, PaymentSplitSettled))[0]

    assert settled.platform_fee == 600  # 10 % of 6 001, rounded down
    assert settled.amount_to_freelancer == 5_401
    assert settled.amount_refunded == 4_000
    assert settled.amount_to_freelancer + settled.platform_fee + settled.amount_refunded == 10_001
    assert stripe_client.v1.transfers.retrieve(settled.transfer_id).amount == 5_401
    assert stripe_client.v1.charges.retrieve(funded.charge_id).amount_refunded == 4_000
    escrow = await escrow_of(http, settings, deal)
    assert (escrow["state"], escrow["held"]) == ("settled", 0)
    await balances_of(http, settings, deal)
    report = await report_of(http, settings, deal)
    assert report["ok"] is True, report
    assert report["lines"][0]["stripe_balance_net"] == 600


async def test_release_waits_for_payouts_then_happens_when_the_account_is_ready(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=5_000)
    await _funded(http, settings, stripe_client, producer, payment_events, deal)
    account = await onboard_freelancer(http, settings, deal)

    await send(producer, deal.release_requested())
    pending = (await payment_events.wait_for(deal.milestone_id, PaymentReleasePending))[0]
    assert "onboarding" in pending.reason
    assert (await escrow_of(http, settings, deal))["state"] == "release_pending"
    assert not payment_events.of(deal.milestone_id, PaymentReleased)

    stripe_server.enable_payouts(account)  # Stripe sends account.updated
    released = (await payment_events.wait_for(deal.milestone_id, PaymentReleased))[0]
    assert released.amount_to_freelancer == 4_500
    assert (await escrow_of(http, settings, deal))["state"] == "released"


async def test_a_release_whose_account_webhook_was_lost_still_happens(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    # Found by the chaos run: account.updated arrived while the payments API was down,
    # and the release waited forever. The reconciler now asks Stripe itself.
    deal = Deal.new(amount=8_000)
    await _funded(http, settings, stripe_client, producer, payment_events, deal)
    account = await onboard_freelancer(http, settings, deal)
    await send(producer, deal.release_requested())
    await payment_events.wait_for(deal.milestone_id, PaymentReleasePending)

    stripe_server.enable_payouts(account, webhook=False)  # ready, but no webhook comes
    released = (await payment_events.wait_for(deal.milestone_id, PaymentReleased))[0]
    assert released.amount_to_freelancer == 7_200
    escrow = await escrow_of(http, settings, deal)
    assert (escrow["state"], escrow["transferred"]) == ("released", 7_200)
    transfers = stripe_client.v1.transfers.list({"limit": 100}).data
    assert [t.amount for t in transfers if t.transfer_group == deal.milestone_id] == [7_200]


async def test_authentication_required_then_completed_by_webhook(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=3_000)
    await save_card(http, settings, deal, stripe_client, CARD_SCA)
    await send(producer, deal.funding_requested())
    action = (await payment_events.wait_for(deal.milestone_id, PaymentActionRequired))[0]
    assert (await escrow_of(http, settings, deal))["state"] == "action_required"

    # What Stripe.js does when the customer passes 3-D Secure.
    async with httpx.AsyncClient(base_url=stripe_server.api_base) as s:
        r = await s.post(
            f"/v1/payment_intents/{action.payment_intent_id}/_authenticate",
            data={"client_secret": action.client_secret, "success": "true"},
            headers={"Authorization": f"Bearer {stripe_server.api_key}"},
        )
        assert r.status_code == 200, r.text

    funded = (await payment_events.wait_for(deal.milestone_id, PaymentFunded))[0]
    assert funded.payment_intent_id == action.payment_intent_id
    escrow = await escrow_of(http, settings, deal)
    assert (escrow["state"], escrow["held"]) == ("funded", 3_000)


async def test_refund_after_release_reverses_the_transfer_first(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=2_000)
    funded = await _funded(http, settings, stripe_client, producer, payment_events, deal)
    account = await onboard_freelancer(http, settings, deal)
    stripe_server.enable_payouts(account)
    await _wait_payouts(http, settings, deal)
    await send(producer, deal.release_requested())
    released = (await payment_events.wait_for(deal.milestone_id, PaymentReleased))[0]
    reversals = stripe_server.stats()["reversals"]

    await send(producer, deal.refund_ordered())
    await payment_events.wait_for(deal.milestone_id, PaymentRefunded)

    transfer = stripe_client.v1.transfers.retrieve(released.transfer_id)
    assert transfer.amount_reversed == 1_800
    assert stripe_client.v1.charges.retrieve(funded.charge_id).amount_refunded == 2_000
    assert stripe_server.stats()["reversals"] == reversals + 1
    books = await balances_of(http, settings, deal)
    assert books[f"freelancer_payable:{deal.freelancer_id}"] == 0
    assert books[f"platform_fees:{deal.marketplace_id}"] == 0
    assert books[f"refunds:{deal.marketplace_id}"] == 2_000
    report = await report_of(http, settings, deal)
    assert report["ok"] is True, report
