"""Running a service's worker: the broker's consumers plus background loops, until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from cairn_schemas import topics as cairn_topics
from faststream.kafka import KafkaBroker

from cairn_chassis import worker_http
from cairn_chassis.db import Database
from cairn_chassis.health import BrokerConnection, Check, SchemaAtHead
from cairn_chassis.kafka_security import client_kwargs
from cairn_chassis.logging import get_logger
from cairn_chassis.messaging import publish_record
from cairn_chassis.outbox import OutboxRelay, measure_outbox, utcnow
from cairn_chassis.retention import Purge, chassis_rules, purge_expired
from cairn_chassis.settings import ServiceSettings

log = get_logger(__name__)

BackgroundLoop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def periodic_loop(
    name: str, interval_s: float, step: Callable[[], Awaitable[object]]
) -> BackgroundLoop:
    """A worker loop running ``step()`` every ``interval_s`` until stopped; a failing
    step is logged (``<name>.failed``) and tried again at the next tick."""

    async def run(stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await step()
            except Exception as exc:
                log.warning(f"{name}.failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=interval_s)

    return run


def retention_loop(
    db: Database, settings: ServiceSettings, extra: Sequence[Purge] = ()
) -> list[BackgroundLoop]:
    """The retention sweep as a worker loop (none when the interval is 0)."""
    if settings.retention_sweep_interval_s <= 0:
        return []
    rules = [*chassis_rules(settings), *extra]
    return [
        periodic_loop(
            "retention",
            settings.retention_sweep_interval_s,
            lambda: purge_expired(db, rules, utcnow()),
        )
    ]


async def ensure_topics(
    bootstrap: str,
    names: Sequence[str],
    *,
    partitions: int = 3,
    settings: ServiceSettings | None = None,
) -> None:
    """Create any missing topic (local runs and tests; production uses KafkaTopic resources).

    ``settings`` carries the Kafka authentication, when the brokers require it.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, **(client_kwargs(settings) if settings else {})
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if not missing:
            return
        new = [
            NewTopic(
                n,
                num_partitions=partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"} if n in cairn_topics.COMPACTED else {},
            )
            for n in missing
        ]
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new)
    finally:
        await admin.close()


async def run_worker(
    broker: KafkaBroker,
    loops: Sequence[BackgroundLoop],
    *,
    settings: ServiceSettings,
    db: Database,
    migrations: Path,
) -> None:
    """Wait for the schema, start the consumers and ``loops``; stop everything cleanly on
    SIGINT/SIGTERM.

    With ``settings.internal_port`` set, the worker serves ``/healthz`` (alive: every loop
    runs, or it is still waiting), ``/readyz`` (the database answers at this code's schema
    head, and the brokers answer on the worker's own connections) and ``/metrics`` from the
    start. A worker whose database is not migrated yet (a new pod of an upgrade started
    before the migration Job finished) waits, consuming nothing, instead of failing every
    event into the dead-letter topic.
    """
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    schema = SchemaAtHead(db, migrations)
    tasks: list[asyncio.Task[None]] = []
    server: asyncio.Task[None] | None = None
    if settings.internal_port:
        checks: list[Check] = [
            ("database", db.ping),
            ("schema", schema),
            ("broker", BrokerConnection(broker)),
        ]
        server = asyncio.create_task(
            worker_http.serve(
                settings.api_host,
                settings.internal_port,
                stopping,
                alive=lambda: not any(t.done() for t in tasks),
                checks=checks,
            )
        )
    try:
        if not await schema.wait(stopping, log=log) or not await _start_broker(broker, stopping):
            return
        log.info("worker.started")
        everything = [*loops, outbox_gauge_loop(db)]
        tasks.extend(asyncio.create_task(fn(stopping)) for fn in everything)
        stop_wait = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait([stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stop_wait and task.exception() is not None:
                log.error("worker.loop_crashed", error=repr(task.exception()))
        stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await broker.stop()
        log.info("worker.stopped")
    finally:
        stopping.set()
        if server is not None:
            await server


def outbox_gauge_loop(db: Database, interval_s: float = 15.0) -> BackgroundLoop:
    """Keeps ``cairn_outbox_pending`` and the oldest unpublished row's age current."""
    return periodic_loop("outbox_gauges", interval_s, lambda: measure_outbox(db, utcnow()))


async def _start_broker(broker: KafkaBroker, stopping: asyncio.Event) -> bool:
    """Connect, retrying with backoff while the brokers are unreachable (a worker started
    during a broker outage waits for it instead of crash-looping); False if stopped."""
    delay = 0.5
    while not stopping.is_set():
        try:
            await broker.start()
            return True
        except Exception as exc:
            log.warning("worker.broker_unavailable", error=repr(exc), retry_in_s=delay)
            with contextlib.suppress(Exception):
                await broker.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(delay * 2, 10.0)
    return False


def outbox_relay_loop(
    db: Database, broker: KafkaBroker, settings: ServiceSettings
) -> BackgroundLoop:
    """A worker loop relaying the service's outbox through ``broker`` until stopped."""

    async def relay(stopping: asyncio.Event) -> None:
        outbox = OutboxRelay(
            db,
            functools.partial(publish_record, broker),
            batch_size=settings.outbox_batch_size,
            poll_interval_s=settings.outbox_poll_interval_s,
        )
        task = asyncio.create_task(outbox.run())
        await stopping.wait()
        outbox.stop()
        await task

    return relay
