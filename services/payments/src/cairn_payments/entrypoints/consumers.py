"""The Kafka side: the broker, the consumer of contract events, the outbox relay."""

from __future__ import annotations

from typing import Any

from cairn_chassis.messaging import EventRouter, document_publications, make_broker, subscribe
from cairn_schemas import topics
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import MilestoneFundingRequested
from faststream.kafka import KafkaBroker

from cairn_payments.config import Settings
from cairn_payments.service import funding, movements
from cairn_payments.service.context import CONSUMER, PaymentsContext


def build_router(ctx: PaymentsContext) -> EventRouter:
    """The contract events payments acts on, each with its use case."""
    router = EventRouter(CONSUMER)

    @router.on(MilestoneFundingRequested)
    async def on_funding_requested(envelope: Envelope[MilestoneFundingRequested]) -> None:
        await funding.fund_milestone(ctx, envelope)

    movements.register(router, ctx)
    return router


def build_broker(settings: Settings, ctx: PaymentsContext | None = None) -> KafkaBroker:
    """A broker subscribed to the contracts topic as consumer group ``payments``.

    Without ``ctx`` (AsyncAPI generation) the handlers are registered but never run.
    """
    broker = make_broker(settings)
    router = build_router(ctx) if ctx is not None else _describe_only()
    subscribe(
        broker,
        settings,
        router,
        topics=[topics.CONTRACTS],
        dlq_topic=topics.dead_letter(CONSUMER),
        description="Payments: charges, releases, refunds and splits asked for by contracts.",
    )
    document_publications(broker, "payments", [topics.PAYMENTS])
    return broker


def _describe_only() -> EventRouter:
    router = EventRouter(CONSUMER)

    async def nothing(envelope: Envelope[Any]) -> None:
        raise RuntimeError("a describe-only broker handles no events")

    router.handlers[MilestoneFundingRequested.event_type] = nothing
    return router
