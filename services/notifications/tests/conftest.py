"""Fixtures for the notifications suite.

The root conftest loads ``cairn_devstack.pytest_plugin`` (broker, mail sink, PostgreSQL
helpers). Integration tests share one running notifications worker (consumers, email
sender, outbox relay) per session: a consumer group join costs seconds on the local
broker, so it is started once and every test works on its own marketplace and contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from cairn_chassis.auth import mint_token
from cairn_chassis.db import Database
from cairn_chassis.messaging import publish_record
from cairn_chassis.migrations import upgrade
from cairn_chassis.outbox import OutboxRelay
from cairn_chassis.runtime import ensure_topics
from cairn_devstack.postgres import create_database, drop_database
from cairn_notifications.adapters.rendering import EmailRenderer
from cairn_notifications.adapters.smtp import SmtpSender
from cairn_notifications.adapters.tables import EmailDelivery
from cairn_notifications.config import MIGRATIONS as MIGRATIONS_DIR
from cairn_notifications.config import Settings
from cairn_notifications.entrypoints import api
from cairn_notifications.entrypoints.consumers import CONSUMER, TOPICS, build_broker
from cairn_notifications.service.deliver import EmailDispatcher
from cairn_schemas import topics
from cairn_schemas.base import Event, Party
from cairn_schemas.cloudevents import to_kafka
from cairn_schemas.samples import SAMPLES
from faststream.kafka import KafkaBroker
from sqlmodel import col, select

TEST_DB = f"cairn_notifications_test_{os.getpid()}"
JWT_SECRET = "notifications-test-secret-of-32-bytes-or-more"
OPERATORS = "ops-alerts@cairn-ops.example"


@pytest.fixture(scope="session")
def nf_mail_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """This suite's own SMTP sink (the devstack one, in its own process): other suites on
    the same broker may also emit emails, and this suite takes its sink down on purpose."""
    from cairn_devstack.testing import start_mail_sink

    sink = start_mail_sink(tmp_path_factory.mktemp("notifications-mail"))
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="session")
def settings(kafka_bootstrap: str, nf_mail_sink: Any) -> Iterator[Settings]:
    """Settings for the shared worker: real PostgreSQL, broker and SMTP sink; fast retries."""
    url = create_database(TEST_DB)
    with ThreadPoolExecutor(1) as pool:  # Alembic's env runs its own event loop
        pool.submit(upgrade, MIGRATIONS_DIR, url).result()
    yield Settings(
        database_url=url,
        database_pool_size=5,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        kafka_fetch_max_wait_ms=10,
        consumer_backoff_initial_s=0.05,
        consumer_backoff_max_s=0.2,
        jwt_secret=JWT_SECRET,
        smtp_host=nf_mail_sink.smtp_host,
        smtp_port=nf_mail_sink.smtp_port,
        # Our own group: a notifications worker of another suite (e2e) may share the broker.
        consumer_group=f"notifications-test-{uuid.uuid4().hex[:8]}",
        smtp_timeout_s=5,
        frontend_url_pattern="https://app.example/{marketplace_id}/contracts/{contract_id}",
        operator_alert_addresses=[OPERATORS],
        delivery_backoff_initial_s=0.05,
        delivery_backoff_max_s=0.4,
        delivery_retry_window_s=60,
        delivery_poll_interval_s=0.05,
        outbox_poll_interval_s=0.02,
    )
    drop_database(TEST_DB)


@dataclass
class Story:
    """One test's own marketplace, contract and people (so tests never see each other)."""

    uid: str
    marketplace_id: str
    contract_id: str
    customer: Party
    freelancer: Party
    events: list[tuple[str, Event]] = field(default_factory=list)

    def event(self, event_type: str, **changes: Any) -> Event:
        """The sample of ``event_type`` moved into this story, with ``changes``."""
        sample = SAMPLES[event_type]
        update: dict[str, Any] = {"marketplace_id": self.marketplace_id}
        if "contract_id" in type(sample).model_fields:
            update["contract_id"] = self.contract_id
        if "customer" in type(sample).model_fields:
            update["customer"] = self.customer
            update["freelancer"] = self.freelancer
        update.update(changes)
        return sample.model_copy(update=update)


def new_story() -> Story:
    """A fresh marketplace, contract, customer and freelancer."""
    uid = uuid.uuid4().hex[:10]
    return Story(
        uid=uid,
        marketplace_id=f"mkt_{uid}",
        contract_id=f"ctr_{uid}",
        customer=Party(
            user_id=f"usr_ada_{uid}", email=f"ada.{uid}@customers.example", name="Ada Lovelace"
        ),
        freelancer=Party(
            user_id=f"usr_grace_{uid}",
            email=f"grace.{uid}@freelancers.example",
            name="Grace Hopper",
        ),
    )


@dataclass
class Harness:
    """The running notifications worker and ways to talk to it."""

    settings: Settings
    db: Database
    producer: AIOKafkaProducer
    http: httpx.AsyncClient
    sink: Any
    opened: set[str] = field(default_factory=set)

    def without_settings(self, marketplace_id: str) -> None:
        """This test publishes the marketplace's settings itself (or never)."""
        self.opened.add(marketplace_id)

    async def publish(self, event: Event, *, event_id: str | None = None) -> str:
        """Publish ``event`` as the contracts/payments service would; return its id.

        As in production, a marketplace's settings exist before anything happens in it:
        the first event of a marketplace is preceded by its (sample) settings, unless the
        test said :meth:`without_settings`.
        """
        settings_type = "cairn.marketplace.settings_changed"
        if event.marketplace_id not in self.opened and event.event_type != settings_type:
            self.opened.add(event.marketplace_id)
            await self.publish(
                SAMPLES[settings_type].model_copy(update={"marketplace_id": event.marketplace_id})
            )
        self.opened.add(event.marketplace_id)
        record = to_kafka(event, source="/tests", event_id=event_id or str(uuid.uuid4()))
        await self.producer.send_and_wait(
            record.topic, record.value, key=record.key, headers=record.headers
        )
        return dict(record.headers)["ce_id"].decode()

    async def deliveries(self, contract_id: str) -> list[EmailDelivery]:
        """Every queued email about ``contract_id``."""
        async with self.db.transaction() as session:
            rows = await session.exec(
                select(EmailDelivery).where(col(EmailDelivery.contract_id) == contract_id)
            )
            return list(rows.all())

    async def settle(
        self, contract_id: str, count: int, timeout: float = 20.0
    ) -> list[EmailDelivery]:
        """Wait until ``count`` emails about the contract exist and none is still in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            rows = await self.deliveries(contract_id)
            done = all(r.status in ("delivered", "failed") for r in rows)
            if (len(rows) >= count and done) or loop.time() > deadline:
                return rows
            await asyncio.sleep(0.05)

    async def mail_to(self, address: str) -> list[dict[str, Any]]:
        """What the SMTP sink caught for ``address``."""
        found: list[dict[str, Any]] = await asyncio.to_thread(self.sink.messages, address)
        return found

    def token(self, marketplace_id: str, role: str = "operator") -> dict[str, str]:
        """Authorization header for a user of ``marketplace_id``."""
        tok = mint_token(
            self.settings,
            sub=f"usr_{role}",
            role=role,  # type: ignore[arg-type]
            marketplace=marketplace_id,
        )
        return {"Authorization": f"Bearer {tok}"}


@pytest.fixture(scope="session")
async def harness(settings: Settings, nf_mail_sink: Any) -> AsyncIterator[Harness]:
    """The notifications worker running in this process against the real stand-ins."""
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        [*TOPICS, topics.NOTIFICATIONS, topics.dead_letter(CONSUMER)],
    )
    db = Database(settings.database_url, pool_size=5)
    broker: KafkaBroker = build_broker(settings, db, EmailRenderer())
    await broker.start()
    relay = OutboxRelay(db, partial(publish_record, broker), poll_interval_s=0.02)
    stopping = asyncio.Event()
    dispatcher = EmailDispatcher(db, SmtpSender(settings), settings)
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(dispatcher.run(stopping))]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    app = api.create(settings, db)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nf")
    try:
        yield Harness(settings, db, producer, http, nf_mail_sink)
    finally:
        stopping.set()
        relay.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        await http.aclose()
        await producer.stop()
        await broker.stop()
        await db.dispose()


@pytest.fixture
def story() -> Story:
    """A fresh marketplace and contract for one test."""
    return new_story()


@pytest.fixture(scope="session")
def story_factory() -> Any:
    """Makes more stories, for tests that need several contracts."""
    return new_story


@pytest.fixture
def sink_without_faults(nf_mail_sink: Any) -> Iterator[Any]:
    """The mail sink, up and without faults before and after the test."""
    nf_mail_sink.start()
    nf_mail_sink.clear_faults()
    yield nf_mail_sink
    nf_mail_sink.start()
    nf_mail_sink.clear_faults()
