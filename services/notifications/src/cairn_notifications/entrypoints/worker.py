"""The worker: the consumers, the email sender and the outbox relay for delivery events."""

from __future__ import annotations

from cairn_chassis.db import Database
from cairn_chassis.runtime import (
    ensure_topics,
    outbox_relay_loop,
    periodic_loop,
    retention_loop,
    run_worker,
)
from cairn_schemas import topics

from cairn_notifications.adapters.rendering import EmailRenderer
from cairn_notifications.adapters.smtp import SmtpSender
from cairn_notifications.config import MIGRATIONS, Settings
from cairn_notifications.entrypoints.consumers import CONSUMER, TOPICS, build_broker
from cairn_notifications.service.deliver import EmailDispatcher
from cairn_notifications.service.gauges import measure_deliveries


async def run(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM."""
    if settings.kafka_create_topics:
        # Local runs and tests; production creates topics with Strimzi KafkaTopic resources.
        await ensure_topics(
            settings.kafka_bootstrap_servers,
            [*TOPICS, topics.NOTIFICATIONS, topics.dead_letter(CONSUMER)],
            settings=settings,
        )
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    dispatcher = EmailDispatcher(db, SmtpSender(settings), settings)
    # The consumer wakes the sender when it queued emails: no wait for the next poll.
    broker = build_broker(settings, db, EmailRenderer(), on_queued=dispatcher.wake)
    try:
        await run_worker(
            broker,
            [
                outbox_relay_loop(db, broker, settings),
                dispatcher.run,
                periodic_loop("delivery_gauges", 15.0, lambda: measure_deliveries(db)),
                *retention_loop(db, settings),
            ],
            settings=settings,
            db=db,
            migrations=MIGRATIONS,
        )
    finally:
        await db.dispose()
