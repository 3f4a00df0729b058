"""Payments against the real PostgreSQL, the real broker and localstripe."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from cairn_chassis.db import Database
from cairn_chassis.migrations import upgrade
from cairn_chassis.runtime import ensure_topics
from cairn_devstack.postgres import create_database, drop_database
from cairn_devstack.procs import free_port
from cairn_devstack.testing import StripeServer
from cairn_payments.adapters.stripe_gateway import StripeGateway
from cairn_payments.config import Settings
from cairn_payments.entrypoints.api import create_app
from cairn_payments.entrypoints.consumers import build_broker
from cairn_payments.entrypoints.worker import background_loops
from cairn_payments.service.context import CONSUMER, PaymentsContext
from cairn_schemas import topics
from cairn_schemas.base import Event
from cairn_schemas.cloudevents import from_kafka, to_kafka

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
WEBHOOK_SECRET = "whsec_cairn_payments_test"
WEBHOOK_ID = "payments-tests"
JWT_SECRET = "payments-test-secret-at-least-32-bytes-long"


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    # One database per test session; the pid keeps concurrent runs on one machine apart.
    name = f"cairn_payments_test_{os.getpid()}"
    url = create_database(name, admin=postgres_admin_url)
    upgrade(MIGRATIONS, url)
    yield url
    drop_database(name, admin=postgres_admin_url)


@pytest.fixture(scope="session")
def api_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def settings(
    database_url: str, kafka_bootstrap: str, stripe_server: StripeServer, api_port: int
) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        kafka_fetch_max_wait_ms=10,
        stripe_api_key=stripe_server.api_key,
        stripe_api_base=stripe_server.api_base,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_request_timeout_s=1.0,
        jwt_secret=JWT_SECRET,
        consumer_backoff_initial_s=0.05,
        consumer_backoff_max_s=0.2,
        reconcile_interval_s=0.5,
        account_recheck_interval_s=1.0,
        owed_call_grace_s=1.5,
        webhook_poll_interval_s=0.1,
        api_port=api_port,
    )


@pytest.fixture(scope="session")
async def ctx(settings: Settings) -> AsyncIterator[PaymentsContext]:
    db = Database(settings.database_url)
    yield PaymentsContext(settings=settings, db=db, gateway=StripeGateway(settings))
    await db.dispose()


@pytest.fixture(scope="session")
async def worker(ctx: PaymentsContext, settings: Settings) -> AsyncIterator[None]:
    """The payments worker (consumers, relay, webhooks, reconciler) in this event loop."""
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        [topics.CONTRACTS, topics.PAYMENTS, topics.dead_letter(CONSUMER)],
    )
    broker = build_broker(settings, ctx)
    await broker.start()
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(loop(stopping)) for loop in background_loops(ctx, broker)]
    yield
    stopping.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await broker.stop()


@pytest.fixture(scope="session")
async def api(
    ctx: PaymentsContext, settings: Settings, stripe_server: StripeServer, api_port: int
) -> AsyncIterator[str]:
    """The payments API served on a free port, registered as localstripe's webhook."""
    app = create_app(settings, context=ctx)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=api_port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{api_port}"
    stripe_server.register_webhook(f"{base}/v1/stripe/webhook", WEBHOOK_SECRET, hook_id=WEBHOOK_ID)
    yield base
    stripe_server.unregister_webhook(WEBHOOK_ID)
    server.should_exit = True
    await task


@pytest.fixture(scope="session")
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()


async def send(producer: AIOKafkaProducer, event: Event, *, event_id: str | None = None) -> str:
    """Publish ``event`` as the contracts service would; returns its CloudEvents id."""
    record = to_kafka(event, source="/cairn/contracts", event_id=event_id)
    await producer.send_and_wait(record.topic, record.value, key=record.key, headers=record.headers)
    return dict(record.headers)["ce_id"].decode()


class PaymentEvents:
    """Reads everything published on the payments topic."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.seen: list[Event] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, fetch_max_wait_ms=10, enable_auto_commit=False
        )
        await self._consumer.start()
        parts: set[int] = set()
        for _ in range(100):  # metadata may not know the topic yet
            await self._consumer.topics()
            parts = self._consumer.partitions_for_topic(topics.PAYMENTS) or set()
            if parts:
                break
            await asyncio.sleep(0.1)
        assert parts, f"{topics.PAYMENTS} has no partitions"
        tps = [TopicPartition(topics.PAYMENTS, p) for p in parts]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)

    async def stop(self) -> None:
        if self._consumer is not None:
            # Idle since the payments tests ended, the reader may have a fetch pending on a
            # broker the rest of the suite keeps busy; its end must not fail another test's
            # teardown (seen under load: a 40 s fetch timeout at session end, and once
            # aiokafka's own cancellation of that fetch leaking out of ``stop()``).
            try:
                await asyncio.wait_for(self._consumer.stop(), timeout=20)
            except (TimeoutError, KafkaError):
                pass
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # this teardown itself is being cancelled

    async def poll(self) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=50)
        for records in batches.values():
            for record in records:
                self.seen.append(from_kafka(record.headers, record.value or b"").event)

    def of(self, milestone_id: str, cls: type[Event] | None = None) -> list[Any]:
        return [
            e
            for e in self.seen
            if getattr(e, "milestone_id", None) == milestone_id
            and (cls is None or isinstance(e, cls))
        ]

    async def wait_for(
        self, milestone_id: str, cls: type[Event], *, timeout: float = 15.0, count: int = 1
    ) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            await self.poll()
            found = self.of(milestone_id, cls)
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"no {cls.__name__} for {milestone_id} within {timeout}s; saw "
                    f"{[type(e).__name__ for e in self.of(milestone_id)]}"
                )
            await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
async def payment_events(kafka_bootstrap: str, worker: None) -> AsyncIterator[PaymentEvents]:
    events = PaymentEvents(kafka_bootstrap)
    await events.start()
    yield events
    await events.stop()


@pytest.fixture(scope="session")
def stripe_client(stripe_server: StripeServer) -> stripe.StripeClient:
    return stripe_server.client()
