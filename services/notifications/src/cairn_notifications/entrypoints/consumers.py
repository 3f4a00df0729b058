"""Kafka consumers: every contract, payment and settings event goes through one handler
that updates the directory and queues emails, inside the inbox transaction."""

from __future__ import annotations

from collections.abc import Callable
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
from cairn_schemas.base import Event, WithParties
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import DeliveryFailed, MarketplaceSettingsChanged
from faststream.kafka import KafkaBroker
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_notifications.adapters.rendering import EmailRenderer
from cairn_notifications.config import Settings
from cairn_notifications.domain.catalogue import EMAILS
from cairn_notifications.service.notify import on_event

CONSUMER = "notifications"
TOPICS = (topics.CONTRACTS, topics.PAYMENTS, topics.MARKETPLACES)


def handled_event_types() -> list[type[Event]]:
    """The events this service listens to: settings, party-carrying events, the catalogue."""
    from cairn_schemas.registry import EVENT_TYPES

    # The sender itself queues the emails about failed deliveries (service/alerts).
    wanted = (set(EMAILS) - {DeliveryFailed.event_type}) | {MarketplaceSettingsChanged.event_type}
    return [
        cls
        for event_type, cls in EVENT_TYPES.items()
        if event_type in wanted or issubclass(cls, WithParties)
    ]


def build_router(
    db: Database,
    settings: Settings,
    renderer: EmailRenderer,
    on_queued: Callable[[], None] | None = None,
) -> EventRouter:
    """One handler for every event type of interest; ``on_queued`` is called after a
    commit that queued emails (the worker wakes its sender with it)."""
    # The Kafka group is configurable (a second, isolated deployment or a test run on a
    # shared broker); the inbox always records events as processed by "notifications".
    router = EventRouter(settings.consumer_group)

    async def handle(envelope: Envelope[Any]) -> None:
        queued = 0

        async def effect(session: AsyncSession) -> None:
            nonlocal queued
            queued = await on_event(session, envelope, settings, renderer)

        if await handle_once(db, CONSUMER, envelope, effect) and queued and on_queued:
            on_queued()

    for cls in handled_event_types():
        router.on(cls)(handle)
    return router


def build_broker(
    settings: Settings,
    db: Database | None = None,
    renderer: EmailRenderer | None = None,
    on_queued: Callable[[], None] | None = None,
) -> KafkaBroker:
    """The broker with the notifications consumer group subscribed (and used to publish)."""
    broker = make_broker(settings)
    router = build_router(
        db or Database(settings.database_url, pool_size=settings.database_pool_size),
        settings,
        renderer or EmailRenderer(),
        on_queued,
    )
    subscribe(
        broker,
        settings,
        router,
        topics=list(TOPICS),
        dlq_topic=topics.dead_letter(CONSUMER),
        description="Projects recipients and branding, queues one email per (event, recipient).",
    )
    document_publications(broker, CONSUMER, [topics.NOTIFICATIONS])
    return broker
