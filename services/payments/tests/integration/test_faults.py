"""Timeouts and 5xx on every kind of Stripe call: the escrow goes through reconciling to
the right final state, and Stripe never holds two charges, transfers or refunds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import stripe
from aiokafka import AIOKafkaProducer
from cairn_devstack.testing import StripeServer
from cairn_payments.adapters.tables import StripeEventRow, StripeOperation
from cairn_payments.config import Settings
from cairn_payments.service.context import PaymentsContext, charge_key
from cairn_schemas.events import (
    PaymentActionRequired,
    PaymentFailed,
    PaymentFunded,
    PaymentReconciling,
    PaymentRefunded,
    PaymentReleased,
    PaymentSplitSettled,
)
from sqlmodel import select

from .conftest import PaymentEvents, send
from .helpers import (
    CARD_DECLINED_ON_CHARGE,
    CARD_SCA,
    Deal,
    balances_of,
    escrow_of,
    onboard_freelancer,
    save_card,
)

pytestmark = pytest.mark.integration

# Longer than the service's Stripe timeout (1 s in these tests): the client gives up.
HANG = {"timeout_rate": 1.0, "timeout_seconds": 1.3}
FAIL = {"error_rate": 1.0}


@pytest.fixture
async def http(api: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        yield client


@pytest.fixture(autouse=True)
def _clear_faults(stripe_server: StripeServer) -> object:
    yield
    stripe_server.clear_faults()


async def _through_reconciling(
    stripe_server: StripeServer, payment_events: PaymentEvents, deal: Deal, operation: str
) -> None:
    notices = await payment_events.wait_for(deal.milestone_id, PaymentReconciling)
    assert notices[0].operation == operation
    stripe_server.clear_faults()


@pytest.mark.parametrize(
    ("fault", "mode"),
    [(HANG, "after"), (HANG, "before"), (FAIL, None)],
    ids=["timeout-after-charging", "timeout-before-charging", "5xx"],
)
async def test_charge_with_unknown_outcome_is_reconciled_to_one_charge(
    fault: dict[str, float],
    mode: str | None,
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=4_200)
    await save_card(http, settings, deal, stripe_client)
    before = stripe_server.stats()["charges"]
    plan = {**fault, "paths": ["/v1/payment_intents"]}
    if mode:
        plan["timeout_mode"] = mode
    stripe_server.set_faults(**plan)

    event = deal.funding_requested()
    event_id = await send(producer, event)
    await _through_reconciling(stripe_server, payment_events, deal, "charge")
    await send(producer, event, event_id=event_id)  # a redelivery while reconciling
    funded = (await payment_events.wait_for(deal.milestone_id, PaymentFunded))[0]

    assert funded.amount == 4_200
    assert stripe_server.stats()["charges"] == before + 1
    escrow = await escrow_of(http, settings, deal)
    assert (escrow["state"], escrow["held"]) == ("funded", 4_200)


async def _funded_and_ready(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
    deal: Deal,
) -> None:
    await save_card(http, settings, deal, stripe_client)
    await send(producer, deal.funding_requested())
    await payment_events.wait_for(deal.milestone_id, PaymentFunded)
    account = await onboard_freelancer(http, settings, deal)
    stripe_server.enable_payouts(account)
    headers = {"Authorization": f"Bearer {deal.token(settings, 'freelancer')}"}
    for _ in range(100):
        r = await http.get("/v1/payment-profiles/me", headers=headers)
        if any(p["payouts_enabled"] for p in r.json()):
            return
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("fault", "mode"), [(HANG, "after"), (FAIL, None)], ids=["timeout-after", "5xx"]
)
async def test_release_with_unknown_outcome_makes_exactly_one_transfer(
    fault: dict[str, float],
    mode: str | None,
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=8_000)
    await _funded_and_ready(
        http, settings, stripe_server, stripe_client, producer, payment_events, deal
    )
    before = stripe_server.stats()["transfers"]
    plan = {**fault, "paths": ["/v1/transfers"]}
    if mode:
        plan["timeout_mode"] = mode
    stripe_server.set_faults(**plan)

    await send(producer, deal.release_requested())
    await _through_reconciling(stripe_server, payment_events, deal, "release")
    released = (await payment_events.wait_for(deal.milestone_id, PaymentReleased))[0]

    assert released.amount_to_freelancer == 7_200
    assert stripe_server.stats()["transfers"] == before + 1
    assert (await escrow_of(http, settings, deal))["state"] == "released"
    await balances_of(http, settings, deal)


@pytest.mark.parametrize(
    ("fault", "mode"), [(HANG, "after"), (FAIL, None)], ids=["timeout-after", "5xx"]
)
async def test_refund_with_unknown_outcome_makes_exactly_one_refund(
    fault: dict[str, float],
    mode: str | None,
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=6_000)
    await save_card(http, settings, deal, stripe_client)
    await send(producer, deal.funding_requested())
    funded = (await payment_events.wait_for(deal.milestone_id, PaymentFunded))[0]
    before = stripe_server.stats()["refunds"]
    plan = {**fault, "paths": ["/v1/refunds"]}
    if mode:
        plan["timeout_mode"] = mode
    stripe_server.set_faults(**plan)

    await send(producer, deal.refund_ordered())
    await _through_reconciling(stripe_server, payment_events, deal, "refund")
    await payment_events.wait_for(deal.milestone_id, PaymentRefunded)

    assert stripe_server.stats()["refunds"] == before + 1
    assert stripe_client.v1.charges.retrieve(funded.charge_id).amount_refunded == 6_000
    assert (await escrow_of(http, settings, deal))["state"] == "refunded"


async def test_split_with_its_refund_timing_out_still_adds_up(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=9_000)
    await _funded_and_ready(
        http, settings, stripe_server, stripe_client, producer, payment_events, deal
    )
    before = stripe_server.stats()
    stripe_server.set_faults(**HANG, timeout_mode="after", paths=["/v1/refunds"])

    await send(producer, deal.split_ordered(to_freelancer=3_000))
    await _through_reconciling(stripe_server, payment_events, deal, "split")
    settled = (await payment_events.wait_for(deal.milestone_id, PaymentSplitSettled))[0]

    after = stripe_server.stats()
    assert after["transfers"] == before["transfers"] + 1
    assert after["refunds"] == before["refunds"] + 1
    assert (settled.amount_to_freelancer, settled.platform_fee, settled.amount_refunded) == (
        2_700,
        300,
        6_000,
    )
    await balances_of(http, settings, deal)


async def test_random_timeouts_and_5xx_on_every_call_still_end_in_one_object_each(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deals = [Deal.new(amount=3_000 + i) for i in range(3)]
    for deal in deals:
        await save_card(http, settings, deal, stripe_client)
        account = await onboard_freelancer(http, settings, deal)
        stripe_server.enable_payouts(account)
    await asyncio.sleep(0.5)
    before = stripe_server.stats()
    stripe_server.set_faults(
        error_rate=0.2,
        timeout_rate=0.2,
        timeout_seconds=2.5,
        seed=7,
        paths=["/v1/payment_intents", "/v1/transfers", "/v1/refunds", "/v1/accounts"],
    )

    for deal in deals:
        await send(producer, deal.funding_requested())
    for deal in deals:
        await payment_events.wait_for(deal.milestone_id, PaymentFunded, timeout=60)
    release, refund, split = deals
    await send(producer, release.release_requested())
    await send(producer, refund.refund_ordered())
    await send(producer, split.split_ordered(to_freelancer=1_000))
    await payment_events.wait_for(release.milestone_id, PaymentReleased, timeout=60)
    await payment_events.wait_for(refund.milestone_id, PaymentRefunded, timeout=60)
    await payment_events.wait_for(split.milestone_id, PaymentSplitSettled, timeout=60)
    stripe_server.clear_faults()

    after = stripe_server.stats()
    assert after["charges"] == before["charges"] + 3
    assert after["transfers"] == before["transfers"] + 2
    assert after["refunds"] == before["refunds"] + 2
    for deal, state in zip(deals, ("released", "refunded", "settled"), strict=True):
        assert (await escrow_of(http, settings, deal))["state"] == state
        await balances_of(http, settings, deal)


async def test_a_retried_payment_whose_worker_died_mid_charge_is_funded_not_refunded(
    http: httpx.AsyncClient,
    settings: Settings,
    ctx: PaymentsContext,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    """Found by the chaos run (seed 7): the customer's card is declined; they pay again with
    another card; the worker taking that second attempt is killed after Stripe charged but
    before its transaction committed, so the escrow still shows attempt 1, failed, when the
    second charge's ``payment_intent.succeeded`` webhook arrives. That success is the
    current attempt's: it funds the escrow, is never refunded, the redelivered request
    charges nothing more, the books hold what Stripe charged (the retry's amount, the
    milestone having been edited in between), and the release pays the freelancer."""
    deal = Deal.new(amount=39_000)
    await save_card(http, settings, deal, stripe_client, CARD_DECLINED_ON_CHARGE)
    await send(producer, deal.funding_requested(attempt=1))
    await payment_events.wait_for(deal.milestone_id, PaymentFailed)
    profile = await save_card(http, settings, deal, stripe_client)
    before = stripe_server.stats()
    deal.amount = 40_544  # the milestone was edited before the customer paid again

    # What the killed worker did before dying: attempt 2's charge, by its own key.
    retry = deal.funding_requested(attempt=2)
    await ctx.gateway.charge(
        amount=deal.amount,
        currency=retry.currency,
        customer_id=profile["stripe_customer_id"],
        payment_method_id=profile["default_payment_method_id"],
        transfer_group=deal.milestone_id,
        metadata={
            "marketplace_id": retry.marketplace_id,
            "contract_id": retry.contract_id,
            "milestone_id": deal.milestone_id,
            "attempt": "2",
            "operation": "charge",
        },
        key=charge_key(deal.milestone_id, 2),
    )
    funded = (await payment_events.wait_for(deal.milestone_id, PaymentFunded))[0]
    assert funded.amount == 40_544
    await send(producer, retry)  # the request redelivered to the restarted worker

    account = await onboard_freelancer(http, settings, deal)
    stripe_server.enable_payouts(account)
    await send(producer, deal.release_requested())
    released = (await payment_events.wait_for(deal.milestone_id, PaymentReleased))[0]
    assert released.amount_to_freelancer == 36_490, "the 10% fee (4,054) stays on the platform"
    after = stripe_server.stats()
    assert after["charges"] == before["charges"] + 1
    assert after["refunds"] == before["refunds"], "nobody asked for a refund"
    assert after["transfers"] == before["transfers"] + 1
    assert len(payment_events.of(deal.milestone_id, PaymentFunded)) == 1
    assert (await escrow_of(http, settings, deal))["state"] == "released"
    await balances_of(http, settings, deal)


async def test_a_stale_charge_whose_refund_timed_out_is_refunded_by_the_reconciler(
    http: httpx.AsyncClient,
    settings: Settings,
    ctx: PaymentsContext,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    """The customer left 3-D Secure open and paid again with another card (cancelling the
    first PaymentIntent failed); then they finished 3-D Secure. The webhook that finds this
    stale charge commits, and its refund call times out: the event is processed and will
    not come again. The reconciler makes the refund, once — the customer pays once."""
    deal = Deal.new(amount=7_300)
    await save_card(http, settings, deal, stripe_client, CARD_SCA)
    await send(producer, deal.funding_requested(attempt=1))
    action = (await payment_events.wait_for(deal.milestone_id, PaymentActionRequired))[0]
    stripe_server.set_faults(
        error_rate=1.0, paths=[f"/v1/payment_intents/{action.payment_intent_id}/cancel"]
    )
    await save_card(http, settings, deal, stripe_client)
    await send(producer, deal.funding_requested(attempt=2))
    funded = (await payment_events.wait_for(deal.milestone_id, PaymentFunded))[0]
    before = stripe_server.stats()["refunds"]

    stripe_server.set_faults(**HANG, timeout_mode="before", paths=["/v1/refunds"])
    stripe_server.authenticate_payment(action.payment_intent_id, action.client_secret)

    async def webhook_failed() -> bool:
        async with ctx.db.transaction() as session:
            rows = (await session.exec(select(StripeEventRow))).all()
        return any(
            r.type == "payment_intent.succeeded"
            and action.payment_intent_id in r.payload
            and r.error is not None
            for r in rows
        )

    async with asyncio.timeout(20):
        while not await webhook_failed():  # processed, then its refund call timed out
            await asyncio.sleep(0.1)
    assert stripe_server.stats()["refunds"] == before, "the refund call timed out unmade"
    stripe_server.clear_faults()

    key = f"cairn:stale-refund:{action.payment_intent_id}"

    async def owed() -> StripeOperation | None:
        async with ctx.db.transaction() as session:
            return await session.get(StripeOperation, key)

    async with asyncio.timeout(20):
        while (op := await owed()) is None or op.status != "succeeded":
            await asyncio.sleep(0.1)
    stale = stripe_client.v1.payment_intents.retrieve(action.payment_intent_id)
    assert stripe_client.v1.charges.retrieve(str(stale.latest_charge)).amount_refunded == 7_300
    assert stripe_client.v1.charges.retrieve(funded.charge_id).amount_refunded == 0
    assert stripe_server.stats()["refunds"] == before + 1
    assert (await escrow_of(http, settings, deal))["state"] == "funded"
