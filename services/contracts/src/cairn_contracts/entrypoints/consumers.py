"""The contracts service's consumers: payment outcomes move milestones on (each in the
consumer's inbox transaction, through the unit of work)."""

from __future__ import annotations

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


def build_router(db: Database) -> EventRouter:
    """Handlers for the payments service's outcomes."""
    router = EventRouter(CONSUMER)

    async def outcome(envelope: Envelope[Any], apply: Apply, attempt: int | None = None) -> None:
        event = envelope.event

        async def effect(session: AsyncSession) -> None:
            uow = SqlUnitOfWork(db, session)
            await payment_outcomes.apply(
                uow, event.marketplace_id, event.milestone_id, apply, attempt=attempt
            )

        await handle_once(db, CONSUMER, envelope, effect)

    @router.on(PaymentFunded)
    async def on_payment_funded(envelope: Envelope[PaymentFunded]) -> None:
        e = envelope.event
        await outcome(
            envelope,
            lambda milestone, caller, now: milestone.payment_succeeded(
                caller,
                now,
                attempt=e.attempt,
                payment_intent_id=e.payment_intent_id,
                charge_id=e.charge_id,
            ),
            e.attempt,
        )

    @router.on(PaymentFailed)
    async def on_payment_failed(envelope: Envelope[PaymentFailed]) -> None:
        e = envelope.event
        await outcome(
            envelope,
            lambda milestone, caller, now: milestone.payment_failed(
                caller,
                now,
                attempt=e.attempt,
                reason=e.reason,
                failure_code=e.failure_code,
                payment_intent_id=e.payment_intent_id,
            ),
            e.attempt,
        )

    @router.on(PaymentActionRequired)
    async def on_payment_action_required(envelope: Envelope[PaymentActionRequired]) -> None:
        e = envelope.event
        await outcome(
            envelope,
            lambda milestone, caller, now: milestone.payment_action_required(
                caller,
                now,
                attempt=e.attempt,
                payment_intent_id=e.payment_intent_id,
                client_secret=e.client_secret,
            ),
            e.attempt,
        )

    @router.on(PaymentReleased)
    async def on_payment_released(envelope: Envelope[PaymentReleased]) -> None:
        e = envelope.event
        details = {
            "transfer_id": e.transfer_id,
            "amount_to_freelancer": e.amount_to_freelancer,
            "platform_fee": e.platform_fee,
        }
        await outcome(envelope, lambda m, c, now: m.release_completed(c, now, **details))

    @router.on(PaymentRefunded)
    async def on_payment_refunded(envelope: Envelope[PaymentRefunded]) -> None:
        refund_id = envelope.event.refund_id
        await outcome(envelope, lambda m, c, now: m.refund_completed(c, now, refund_id=refund_id))

    @router.on(PaymentSplitSettled)
    async def on_payment_split_settled(envelope: Envelope[PaymentSplitSettled]) -> None:
        e = envelope.event
        details = e.model_dump(
            include={
                "amount_to_freelancer", "platform_fee", "amount_refunded", "transfer_id",
                "refund_id", "dispute_id",
            }
        )  # fmt: skip
        await outcome(envelope, lambda m, c, now: m.split_completed(c, now, **details))

    @router.on(PaymentChargebackOpened)
    async def on_chargeback_opened(envelope: Envelope[PaymentChargebackOpened]) -> None:
        reason = envelope.event.reason
        await outcome(envelope, lambda m, c, now: m.chargeback_opened(c, now, reason))

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
