"""The contracts service's consumers: payment outcomes move milestones on."""

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

from cairn_contracts.config import Settings
from cairn_contracts.domain.rules import Command
from cairn_contracts.service import milestones
from cairn_contracts.service.common import Caller

CONSUMER = "contracts"


def _payments(marketplace_id: str) -> Caller:
    return Caller(user_id="payments", marketplace_id=marketplace_id, role="payments")


def build_router(db: Database) -> EventRouter:
    """Handlers for the payments service's outcomes."""
    router = EventRouter(CONSUMER)

    async def outcome(envelope: Envelope[Any], command: Command, **details: Any) -> None:
        e = envelope.event

        async def effect(session: AsyncSession) -> None:
            await milestones.payment_outcome(
                session, _payments(e.marketplace_id), e.milestone_id, command, **details
            )

        await handle_once(db, CONSUMER, envelope, effect)

    @router.on(PaymentFunded)
    async def on_payment_funded(envelope: Envelope[PaymentFunded]) -> None:
        e = envelope.event
        await outcome(
            envelope,
            Command.PAYMENT_SUCCEEDED,
            attempt=e.attempt,
            payment_intent_id=e.payment_intent_id,
            charge_id=e.charge_id,
        )

    @router.on(PaymentFailed)
    async def on_payment_failed(envelope: Envelope[PaymentFailed]) -> None:
        e = envelope.event
        await outcome(
            envelope,
            Command.PAYMENT_FAILED,
            attempt=e.attempt,
            reason=e.reason,
            failure_code=e.failure_code,
            payment_intent_id=e.payment_intent_id,
        )

    @router.on(PaymentActionRequired)
    async def on_payment_action_required(envelope: Envelope[PaymentActionRequired]) -> None:
        e = envelope.event

        async def effect(session: AsyncSession) -> None:
            await milestones.payment_action_required(
                session,
                _payments(e.marketplace_id),
                e.milestone_id,
                e.attempt,
                e.payment_intent_id,
                e.client_secret,
            )

        await handle_once(db, CONSUMER, envelope, effect)

    @router.on(PaymentReleased)
    async def on_payment_released(envelope: Envelope[PaymentReleased]) -> None:
        e = envelope.event
        await outcome(
            envelope,
            Command.RELEASE_COMPLETED,
            transfer_id=e.transfer_id,
            amount_to_freelancer=e.amount_to_freelancer,
            platform_fee=e.platform_fee,
        )

    @router.on(PaymentRefunded)
    async def on_payment_refunded(envelope: Envelope[PaymentRefunded]) -> None:
        await outcome(envelope, Command.REFUND_COMPLETED, refund_id=envelope.event.refund_id)

    @router.on(PaymentSplitSettled)
    async def on_payment_split_settled(envelope: Envelope[PaymentSplitSettled]) -> None:
        e = envelope.event
        await outcome(
            envelope,
            Command.SPLIT_COMPLETED,
            amount_to_freelancer=e.amount_to_freelancer,
            platform_fee=e.platform_fee,
            amount_refunded=e.amount_refunded,
            transfer_id=e.transfer_id,
            refund_id=e.refund_id,
            dispute_id=e.dispute_id,
        )

    @router.on(PaymentChargebackOpened)
    async def on_chargeback_opened(envelope: Envelope[PaymentChargebackOpened]) -> None:
        e = envelope.event

        async def effect(session: AsyncSession) -> None:
            await milestones.chargeback_opened(
                session, _payments(e.marketplace_id), e.milestone_id, e.reason
            )

        await handle_once(db, CONSUMER, envelope, effect)

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
