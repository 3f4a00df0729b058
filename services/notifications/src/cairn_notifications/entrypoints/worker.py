"""The worker: the consumers, the email sender and the outbox relay for delivery events."""

from __future__ import annotations

import asyncio
from functools import partial

from cairn_chassis.db import Database
from cairn_chassis.messaging import publish_record
from cairn_chassis.outbox import OutboxRelay
from cairn_chassis.runtime import ensure_topics, run_worker
from cairn_schemas import topics
from prometheus_client import start_http_server

from cairn_notifications.adapters.rendering import EmailRenderer
from cairn_notifications.adapters.smtp import SmtpSender
from cairn_notifications.config import Settings
from cairn_notifications.entrypoints.consumers import CONSUMER, TOPICS, build_broker
from cairn_notifications.service.deliver import EmailDispatcher


async def run(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM."""
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.api_host)
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        [*TOPICS, topics.NOTIFICATIONS, topics.dead_letter(CONSUMER)],
    )
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    broker = build_broker(settings, db, EmailRenderer())
    relay = OutboxRelay(
        db,
        partial(publish_record, broker),
        batch_size=settings.outbox_batch_size,
        poll_interval_s=settings.outbox_poll_interval_s,
    )
    dispatcher = EmailDispatcher(db, SmtpSender(settings), settings)

    async def relay_loop(stopping: asyncio.Event) -> None:
        task = asyncio.create_task(relay.run())
        await stopping.wait()
        relay.stop()
        await task

    try:
        await run_worker(broker, [relay_loop, dispatcher.run])
    finally:
        await db.dispose()
