"""The transactional outbox against the real PostgreSQL and the real broker."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from cairn_chassis.db import Database
from cairn_chassis.inbox import record_once
from cairn_chassis.messaging import publish_record
from cairn_chassis.outbox import OutboxMessage, OutboxRelay, add_event, count_pending
from cairn_devstack.broker import create_topics
from cairn_schemas.base import Actor
from cairn_schemas.cloudevents import from_kafka
from cairn_schemas.events import MessagePosted
from faststream.kafka import KafkaBroker
from sqlmodel import select


def message(contract: str, n: int) -> MessagePosted:
    return MessagePosted(
        marketplace_id="mk",
        contract_id=contract,
        message_id=f"m{n}",
        author=Actor(user_id="u", role="customer"),
        body=f"message {n}",
    )


async def consume(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=10
    )
    await consumer.start()
    records: list[Any] = []
    try:
        # On timeout, what came is returned: the caller's assertion then says how much.
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < count and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for rs in batch.values():
                records.extend(rs)
        # Anything beyond ``count`` that is already there is a duplicate we want to see.
        batch = await consumer.getmany(timeout_ms=300)
        for rs in batch.values():
            records.extend(rs)
    finally:
        await consumer.stop()
    return records


async def write(db: Database, events: list[MessagePosted], topic: str) -> list[str]:
    ids = []
    for e in events:
        async with db.transaction() as session:
            ids.append(add_event(session, e, source="/cairn/test"))
    async with db.transaction() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
        for row in rows:
            row.topic = topic
            session.add(row)
    return ids


async def test_relay_publishes_in_order_with_cloudevents_headers_and_marks_sent(
    db: Database, broker: KafkaBroker, kafka_bootstrap: str, topic: str
) -> None:
    await create_topics(kafka_bootstrap, {topic: 3})
    events = [message("ct_a", n) for n in range(5)] + [message("ct_b", n) for n in range(5)]
    ids = await write(db, events, topic)
    relay = OutboxRelay(db, functools.partial(publish_record, broker))
    assert await relay.relay_once() == 10
    assert await count_pending(db) == 0

    records = await consume(kafka_bootstrap, topic, 10)
    assert len(records) == 10
    by_key: dict[bytes, list[str]] = {}
    for r in records:
        envelope = from_kafka(r.headers, r.value)
        assert envelope.source == "/cairn/test"
        assert envelope.type == "cairn.message.posted"
        by_key.setdefault(r.key, []).append(envelope.event.message_id)
    assert by_key == {b"ct_a": [f"m{n}" for n in range(5)], b"ct_b": [f"m{n}" for n in range(5)]}
    assert sorted(from_kafka(r.headers, r.value).id for r in records) == sorted(ids)


async def test_crash_between_publish_and_commit_republishes_and_the_inbox_dedupes(
    db: Database, broker: KafkaBroker, kafka_bootstrap: str, topic: str
) -> None:
    await create_topics(kafka_bootstrap, {topic: 1})
    await write(db, [message("ct_c", 1)], topic)

    class Crash(Exception):
        pass

    async def publish_then_die(*args: Any) -> Awaitable[Any]:
        confirmation = await publish_record(broker, *args)
        await confirmation  # the broker has it...
        raise Crash  # ...and the process dies before marking the row sent

    crashing = OutboxRelay(db, publish_then_die)
    with pytest.raises(Crash):
        await crashing.relay_once()
    assert await count_pending(db) == 1, "the row must still be pending after the crash"

    assert await OutboxRelay(db, functools.partial(publish_record, broker)).relay_once() == 1
    records = await consume(kafka_bootstrap, topic, 2)
    assert len(records) == 2, "at-least-once: the event went out twice"
    first, second = (from_kafka(r.headers, r.value) for r in records)
    assert first.id == second.id

    applied = 0
    for envelope in (first, second):
        async with db.transaction() as session:
            if await record_once(session, "test-consumer", envelope.id, envelope.type):
                applied += 1
    assert applied == 1, "the consumer applies the event exactly once"


async def test_relay_waits_for_the_broker_and_loses_nothing(
    db: Database, broker: KafkaBroker, kafka_bootstrap: str, topic: str
) -> None:
    """A broker failure leaves every row pending; a later run publishes them."""
    await create_topics(kafka_bootstrap, {topic: 1})
    await write(db, [message("ct_d", n) for n in range(3)], topic)

    async def broker_down(*args: Any) -> Awaitable[Any]:
        raise ConnectionError("broker unreachable")

    relay = OutboxRelay(db, broker_down)
    with pytest.raises(ConnectionError):
        await relay.relay_once()
    assert await count_pending(db) == 3
    assert await OutboxRelay(db, functools.partial(publish_record, broker)).relay_once() == 3
    assert len(await consume(kafka_bootstrap, topic, 3)) == 3


async def test_two_relays_keep_per_key_order(
    db: Database, broker: KafkaBroker, kafka_bootstrap: str, topic: str
) -> None:
    """Relays in several replicas (SKIP LOCKED) never reorder one contract's events."""
    await create_topics(kafka_bootstrap, {topic: 2})
    events = [message(f"ct_{n % 4}", n) for n in range(80)]
    await write(db, events, topic)

    async def slow_publish(*args: Any) -> Awaitable[Any]:
        await asyncio.sleep(0.002)  # widen the window in which the relays overlap
        return await publish_record(broker, *args)

    relays = [OutboxRelay(db, slow_publish, batch_size=7) for _ in range(2)]

    async def drain(relay: OutboxRelay) -> None:
        while await count_pending(db):
            await relay.relay_once()

    await asyncio.gather(*(drain(r) for r in relays))
    records = await consume(kafka_bootstrap, topic, 80)
    by_key: dict[bytes, list[int]] = {}
    for r in records:
        body = from_kafka(r.headers, r.value).event
        by_key.setdefault(r.key, []).append(int(body.message_id[1:]))
    assert sum(len(v) for v in by_key.values()) == 80, {k: len(v) for k, v in by_key.items()}
    for key, numbers in by_key.items():
        assert numbers == sorted(numbers), f"events of {key!r} out of order"


async def test_a_commit_wakes_a_listening_relay_long_before_its_next_poll(
    db: Database, broker: KafkaBroker, kafka_bootstrap: str, topic: str
) -> None:
    await create_topics(kafka_bootstrap, {topic: 3})
    relay = OutboxRelay(
        db,
        functools.partial(publish_record, broker),
        poll_interval_s=30.0,
        listening_poll_interval_s=30.0,
    )
    running = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(10):
            while not relay._listening:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # its first pass found nothing: it now waits 30 s
        async with db.transaction() as session:
            add_event(session, message("ct_wake", 1), source="/cairn/test")
            for row in session.new:
                row.topic = topic
        records = await consume(kafka_bootstrap, topic, 1, timeout=5.0)
        assert len(records) == 1, "the commit's notification woke the relay"
    finally:
        relay.stop()
        await asyncio.wait_for(running, timeout=10)
