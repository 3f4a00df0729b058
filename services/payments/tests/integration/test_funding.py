"""Funding: a funding request in, one charge in Stripe, one outcome event out."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import stripe
from aiokafka import AIOKafkaProducer
from cairn_devstack.testing import StripeServer
from cairn_payments.config import Settings
from cairn_schemas.events import PaymentActionRequired, PaymentFailed, PaymentFunded

from .conftest import PaymentEvents, send
from .helpers import CARD_DECLINED_ON_CHARGE, Deal, save_card

pytestmark = pytest.mark.integration


@pytest.fixture
async def http(api: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=api, timeout=10)


async def test_funding_request_charges_the_saved_card_once_even_when_delivered_twice(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_server: StripeServer,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new(amount=12_345)
    await save_card(http, settings, deal, stripe_client)
    charges_before = stripe_server.stats()["charges"]

    event = deal.funding_requested()
    event_id = await send(producer, event)
    funded = (await payment_events.wait_for(deal.milestone_id, PaymentFunded))[0]

    assert funded.amount == 12_345
    assert funded.charge_id.startswith("ch_")
    charge = stripe_client.v1.charges.retrieve(funded.charge_id)
    assert charge.amount == 12_345
    assert stripe_server.stats()["charges"] == charges_before + 1

    # The same event again (a redelivery) and the same attempt under a new event id.
    await send(producer, event, event_id=event_id)
    await send(producer, event)
    await asyncio.sleep(1.5)
    await payment_events.poll()
    assert stripe_server.stats()["charges"] == charges_before + 1
    assert len(payment_events.of(deal.milestone_id, PaymentFunded)) == 1


async def test_declined_card_is_reported_with_a_reason_the_customer_can_read(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new()
    await save_card(http, settings, deal, stripe_client, CARD_DECLINED_ON_CHARGE)

    await send(producer, deal.funding_requested())
    failed = (await payment_events.wait_for(deal.milestone_id, PaymentFailed))[0]

    assert "declined" in failed.reason.lower()
    assert failed.failure_code
    assert not payment_events.of(deal.milestone_id, PaymentFunded)


async def test_no_saved_card_fails_with_that_reason(
    producer: AIOKafkaProducer, payment_events: PaymentEvents
) -> None:
    deal = Deal.new()
    await send(producer, deal.funding_requested())
    failed = (await payment_events.wait_for(deal.milestone_id, PaymentFailed))[0]
    assert "no saved card" in failed.reason.lower()
    assert failed.failure_code == "no_payment_method"


async def test_card_needing_authentication_reports_action_required_with_client_secret(
    http: httpx.AsyncClient,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    producer: AIOKafkaProducer,
    payment_events: PaymentEvents,
) -> None:
    deal = Deal.new()
    await save_card(http, settings, deal, stripe_client, "4000002760003184")

    await send(producer, deal.funding_requested())
    action = (await payment_events.wait_for(deal.milestone_id, PaymentActionRequired))[0]
    assert action.client_secret.startswith(action.payment_intent_id)
