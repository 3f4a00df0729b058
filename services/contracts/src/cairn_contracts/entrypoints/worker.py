"""The contracts worker: payment-outcome consumers and the outbox relay."""

from __future__ import annotations

from cairn_chassis.db import Database
from cairn_chassis.runtime import ensure_topics, outbox_relay_loop, run_worker
from cairn_schemas import topics

from cairn_contracts.config import Settings
from cairn_contracts.entrypoints.consumers import CONSUMER, build_broker


async def run(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM."""
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    if settings.kafka_create_topics:
        await ensure_topics(
            settings.kafka_bootstrap_servers, [*topics.ALL, topics.dead_letter(CONSUMER)]
        )
    broker = build_broker(settings, db)

    try:
        await run_worker(broker, [outbox_relay_loop(db, broker, settings)])
    finally:
        await db.dispose()
