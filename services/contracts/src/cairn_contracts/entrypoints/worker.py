"""The contracts worker: payment-outcome consumers, the outbox relay and the timers."""

from __future__ import annotations

from datetime import timedelta

from cairn_chassis.db import Database
from cairn_chassis.logging import get_logger
from cairn_chassis.outbox import utcnow
from cairn_chassis.runtime import (
    ensure_topics,
    outbox_relay_loop,
    periodic_loop,
    retention_loop,
    run_worker,
)
from cairn_schemas import topics

from cairn_contracts.config import MIGRATIONS, Settings
from cairn_contracts.domain.records import Calendar
from cairn_contracts.entrypoints.consumers import CONSUMER, build_broker
from cairn_contracts.service import timers

log = get_logger(__name__)


async def run(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM."""
    Calendar.day = timedelta(seconds=settings.day_seconds)
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    if settings.kafka_create_topics:
        await ensure_topics(
            settings.kafka_bootstrap_servers,
            [*topics.ALL, topics.dead_letter(CONSUMER)],
            settings=settings,
        )
    broker = build_broker(settings, db)

    reminder_before = Calendar.days(settings.reminder_days_before)
    timer_loop = periodic_loop(
        "timers",
        settings.timer_poll_interval_s,
        lambda: timers.run_due(db, utcnow(), reminder_before=reminder_before),
    )

    try:
        await run_worker(
            broker,
            [outbox_relay_loop(db, broker, settings), timer_loop, *retention_loop(db, settings)],
            settings=settings,
            db=db,
            migrations=MIGRATIONS,
        )
    finally:
        await db.dispose()
