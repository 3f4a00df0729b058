"""The worker process: consumers, outbox relay, webhook processor and reconciler."""

from __future__ import annotations

from datetime import timedelta

from cairn_chassis.db import Database
from cairn_chassis.logging import get_logger
from cairn_chassis.outbox import utcnow
from cairn_chassis.retention import Purge
from cairn_chassis.runtime import (
    BackgroundLoop,
    ensure_topics,
    outbox_relay_loop,
    periodic_loop,
    retention_loop,
    run_worker,
)
from cairn_chassis.settings import ServiceSettings
from cairn_schemas import topics
from faststream.kafka import KafkaBroker

from cairn_payments.adapters.stripe_gateway import StripeGateway
from cairn_payments.adapters.tables import StripeEventRow
from cairn_payments.config import MIGRATIONS, Settings
from cairn_payments.entrypoints.consumers import build_broker
from cairn_payments.service import reconcile, webhooks
from cairn_payments.service.context import CONSUMER, PaymentsContext
from cairn_payments.service.gauges import measure_reconciling

log = get_logger(__name__)


def build_context(settings: Settings) -> PaymentsContext:
    """The process's collaborators."""
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    return PaymentsContext(settings=settings, db=db, gateway=StripeGateway(settings))


def retention_rules(settings: Settings) -> list[Purge]:
    """Payments' own purge rules, beside the chassis' (processed webhook events)."""
    if settings.retention_stripe_event_days <= 0:
        return []
    events = StripeEventRow.__table__  # type: ignore[attr-defined]
    return [
        Purge(
            events,
            events.c.received_at,
            timedelta(days=settings.retention_stripe_event_days),
            events.c.processed_at.is_not(None),
        )
    ]


def background_loops(ctx: PaymentsContext, broker: KafkaBroker) -> list[BackgroundLoop]:
    """Everything the worker runs beside the consumers."""
    return [
        outbox_relay_loop(ctx.db, broker, ctx.settings),
        periodic_loop(
            "webhooks",
            ctx.settings.webhook_poll_interval_s,
            lambda: webhooks.process_pending(ctx),
        ),
        periodic_loop(
            "reconciler", ctx.settings.reconcile_interval_s, lambda: reconcile.sweep(ctx)
        ),
        periodic_loop("reconciling_gauge", 15.0, lambda: measure_reconciling(ctx.db, utcnow())),
        *retention_loop(ctx.db, ctx.settings, retention_rules(ctx.settings)),
    ]


async def run(settings: ServiceSettings) -> None:
    """Run the worker until SIGINT/SIGTERM."""
    assert isinstance(settings, Settings)
    ctx = build_context(settings)
    if settings.kafka_create_topics:
        await ensure_topics(
            settings.kafka_bootstrap_servers,
            [*topics.ALL, topics.dead_letter(CONSUMER)],
            settings=settings,
        )
    broker = build_broker(settings, ctx)
    try:
        await run_worker(
            broker,
            background_loops(ctx, broker),
            settings=settings,
            db=ctx.db,
            migrations=MIGRATIONS,
        )
    finally:
        await ctx.db.dispose()
