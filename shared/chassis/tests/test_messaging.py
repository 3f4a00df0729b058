"""Consumer defaults on the real broker: handled once, retried, dead-lettered with a reason."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer
from cairn_chassis.db import Database
from cairn_chassis.messaging import EventRouter, handle_once, make_broker, subscribe
from cairn_chassis.settings import ServiceSettings
from cairn_devstack.broker import create_topics
from cairn_schemas.base import Actor
from cairn_schemas.cloudevents import Envelope, to_kafka
from cairn_schemas.events import MessagePosted
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession


def posted(n: int) -> MessagePosted:
    return MessagePosted(
        marketplace_id="mk",
        contract_id="ct_1",
        message_id=f"m{n}",
        author=Actor(user_id="u", role="customer"),
        body=f"hello {n}",
    )


async def produce(
    settings: ServiceSettings,
    topic: str,
    value: bytes,
    headers: list[tuple[str, bytes]],
    key: bytes = b"ct_1",
) -> None:
    broker = make_broker(settings)
    await broker.start()
    try:
        await broker.publish(value, topic, key=key, headers={k: v.decode() for k, v in headers})
    finally:
        await broker.stop()


async def read_all(bootstrap: str, topic: str, count: int, timeout: float = 20) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=10
    )
    await consumer.start()
    out: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while len(out) < count:
                for rs in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(rs)
    finally:
        await consumer.stop()
    return out


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.05)


async def test_duplicate_delivery_applies_once(
    settings: ServiceSettings, db: Database, kafka_bootstrap: str, topic: str
) -> None:
    await create_topics(kafka_bootstrap, {topic: 1, f"{topic}.dlq": 1})
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS effects"))
        await conn.execute(text("CREATE TABLE effects (message_id text)"))
    router = EventRouter("dedupe-test")

    @router.on(MessagePosted)
    async def on_posted(envelope: Envelope[MessagePosted]) -> None:
        async def effect(session: AsyncSession) -> None:
            await (await session.connection()).execute(
                text("INSERT INTO effects VALUES (:m)"), {"m": envelope.event.message_id}
            )

        await handle_once(db, router.consumer, envelope, effect)

    broker = make_broker(settings)
    subscribe(broker, settings, router, topics=[topic], dlq_topic=f"{topic}.dlq")
    await broker.start()
    try:
        record = to_kafka(posted(1), source="/cairn/test")
        for _ in range(3):  # the same CloudEvent (same ce_id) three times
            await produce(settings, topic, record.value, record.headers)
        await produce(
            settings,
            topic,
            *(lambda r: (r.value, r.headers))(to_kafka(posted(2), source="/cairn/test")),
        )

        async def both_seen() -> bool:
            async with db.engine.connect() as conn:
                rows = (await conn.execute(text("SELECT message_id FROM effects"))).all()
            return {r[0] for r in rows} == {"m1", "m2"}

        await wait_for(both_seen)
        await asyncio.sleep(0.5)  # let any straggling duplicate land
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT message_id FROM effects ORDER BY 1"))).all()
        assert [r[0] for r in rows] == ["m1", "m2"]
    finally:
        await broker.stop()


async def test_failing_handler_is_retried_then_dead_lettered_and_the_partition_flows(
    settings: ServiceSettings, kafka_bootstrap: str, topic: str
) -> None:
    dlq = f"{topic}.dlq"
    await create_topics(kafka_bootstrap, {topic: 1, dlq: 1})
    router = EventRouter("dlq-test")
    attempts: dict[str, int] = {}
    handled: list[str] = []

    @router.on(MessagePosted)
    async def on_posted(envelope: Envelope[MessagePosted]) -> None:
        mid = envelope.event.message_id
        attempts[mid] = attempts.get(mid, 0) + 1
        if mid == "m1":
            raise RuntimeError("boom: the database said no")
        handled.append(mid)

    broker = make_broker(settings)
    subscribe(broker, settings, router, topics=[topic], dlq_topic=dlq)
    await broker.start()
    try:
        for n in (1, 2):
            r = to_kafka(posted(n), source="/cairn/test")
            await produce(settings, topic, r.value, r.headers)
        await produce(settings, topic, b"{not json", [("ce_specversion", b"1.0")])

        async def drained() -> bool:
            return handled == ["m2"]

        await wait_for(drained)
        parked = await read_all(kafka_bootstrap, dlq, 2)
    finally:
        await broker.stop()
    assert attempts["m1"] == settings.consumer_max_attempts
    reasons = sorted(dict(r.headers)["dlq_reason"].decode() for r in parked)
    assert reasons[0].startswith("handler failed 3 times: RuntimeError: boom")
    assert reasons[1].startswith("invalid event")
    assert all(dict(r.headers)["dlq_original_topic"].decode() == topic for r in parked)
