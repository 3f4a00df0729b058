"""Running a service's worker: the broker's consumers plus background loops, until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from cairn_schemas import topics as cairn_topics
from faststream.kafka import KafkaBroker

from cairn_chassis import worker_http
from cairn_chassis.db import Database
from cairn_chassis.http import BrokerProbe
from cairn_chassis.kafka_security import client_kwargs
from cairn_chassis.logging import get_logger
from cairn_chassis.messaging import publish_record
from cairn_chassis.outbox import OutboxRelay, utcnow
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
    settings: ServiceSettings | None = None,
    db: Database | None = None,
) -> None:
    """Start the consumers and ``loops``; stop everything cleanly on SIGINT/SIGTERM.

    With ``settings.worker_port`` set, the worker also serves ``/healthz`` (every loop
    alive), ``/readyz`` (database and broker answer) and ``/metrics``.
    """
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    if not await _start_broker(broker, stopping):
        return
    log.info("worker.started")
    tasks: list[asyncio.Task[None]] = [asyncio.create_task(fn(stopping)) for fn in loops]
    if settings is not None and settings.worker_port:
        checks: list[worker_http.Check] = [("broker", BrokerProbe(settings))]
        if db is not None:
            checks.insert(0, ("database", db.ping))
        tasks.append(
            asyncio.create_task(
                worker_http.serve(
                    settings.api_host,
                    settings.worker_port,
                    stopping,
                    alive=lambda: not any(t.done() for t in tasks),
                    checks=checks,
                )
            )
        )
    stop_wait = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait([stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not stop_wait and task.exception() is not None:
            log.error("worker.loop_crashed", error=repr(task.exception()))
    stopping.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await broker.stop()
    log.info("worker.stopped")


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
