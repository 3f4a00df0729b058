"""The contracts service's consumers: payment outcomes move milestones on (each in the
consumer's inbox transaction, through the unit of work)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from cairn_chassis.db import Database
from cairn_chassis.messaging import (
    EventRouter,
    document_publications,
    handle_once,
    make_broker,
    subscribe,
)
from cairn_schemas import topics
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import (
    PaymentActionRequired,
    PaymentChargebackOpened,
    PaymentFailed,
    PaymentFunded,
    PaymentRefunded,
    PaymentReleased,
    PaymentSplitSettled,
)
from faststream.kafka import KafkaBroker
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_contracts.adapters.unit_of_work import SqlUnitOfWork
from cairn_contracts.config import Settings
from cairn_contracts.service import payment_outcomes
from cairn_contracts.service.payment_outcomes import Apply

CONSUMER = "contracts"


def on_funded(e: PaymentFunded) -> Apply:
    return lambda milestone, payments, now: milestone.payment_succeeded(
        payments, now, attempt=e.attempt, payment_intent_id=e.payment_intent_id,
        charge_id=e.charge_id,
    )  # fmt: skip


def on_failed(e: PaymentFailed) -> Apply:
    return lambda milestone, payments, now: milestone.payment_failed(
        payments, now, attempt=e.attempt, reason=e.reason, failure_code=e.failure_code,
        payment_intent_id=e.payment_intent_id,
    )  # fmt: skip


def on_action_required(e: PaymentActionRequired) -> Apply:
    return lambda milestone, payments, now: milestone.payment_action_required(
        payments, now, attempt=e.attempt, payment_intent_id=e.payment_intent_id,
        client_secret=e.client_secret,
    )  # fmt: skip


def on_released(e: PaymentReleased) -> Apply:
    details = e.model_dump(include={"transfer_id", "amount_to_freelancer", "platform_fee"})
    return lambda milestone, payments, now: milestone.release_completed(payments, now, **details)


def on_refunded(e: PaymentRefunded) -> Apply:
    return lambda milestone, payments, now: milestone.refund_completed(
        payments, now, refund_id=e.refund_id
    )


def on_split_settled(e: PaymentSplitSettled) -> Apply:
    details = e.model_dump(
        include={
            "amount_to_freelancer", "platform_fee", "amount_refunded", "transfer_id",
            "refund_id", "dispute_id",
        }
    )  # fmt: skip
    return lambda milestone, payments, now: milestone.split_completed(payments, now, **details)


def on_chargeback_opened(e: PaymentChargebackOpened) -> Apply:
    return lambda milestone, payments, now: milestone.chargeback_opened(payments, now, e.reason)


#: Each payments outcome, and what it does to the milestone it names.
OUTCOMES: dict[type[Any], Callable[[Any], Apply]] = {
    PaymentFunded: on_funded,
    PaymentFailed: on_failed,
    PaymentActionRequired: on_action_required,
    PaymentReleased: on_released,
    PaymentRefunded: on_refunded,
    PaymentSplitSettled: on_split_settled,
    PaymentChargebackOpened: on_chargeback_opened,
}
#: Outcomes of one funding attempt: an older attempt's answer changes nothing.
OF_AN_ATTEMPT = (PaymentFunded, PaymentFailed, PaymentActionRequired)


def build_router(db: Database) -> EventRouter:
    """Handlers for the payments service's outcomes, each applied once (inbox) through the
    unit of work in the inbox's transaction."""
    router = EventRouter(CONSUMER)

    def handler(to_apply: Callable[[Any], Apply]) -> Callable[[Envelope[Any]], Awaitable[None]]:
        async def handle(envelope: Envelope[Any]) -> None:
            event = envelope.event
            attempt = event.attempt if isinstance(event, OF_AN_ATTEMPT) else None

            async def effect(session: AsyncSession) -> None:
                await payment_outcomes.apply(
                    SqlUnitOfWork(db, session), event.marketplace_id, event.milestone_id,
                    to_apply(event), attempt=attempt,
                )  # fmt: skip

            await handle_once(db, CONSUMER, envelope, effect)

        return handle

    for event_type, to_apply in OUTCOMES.items():
        router.on(event_type)(handler(to_apply))
    return router


def build_broker(settings: Settings, db: Database) -> KafkaBroker:
    """The broker with the consumers attached and the published topics documented."""
    broker = make_broker(settings)
    subscribe(
        broker,
        settings,
        build_router(db),
        topics=[topics.PAYMENTS],
        dlq_topic=topics.dead_letter(CONSUMER),
    )
    document_publications(broker, CONSUMER, [topics.CONTRACTS, topics.MARKETPLACES])
    return broker
