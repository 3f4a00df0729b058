"""Consumer defaults on the real broker: handled once, retried, dead-lettered with a reason."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from cairn_chassis.cli import ServiceCLI
from cairn_chassis.db import Database
from cairn_chassis.messaging import EventRouter, handle_once, make_broker, subscribe
from cairn_chassis.settings import ServiceSettings
from cairn_devstack.broker import create_topics
from cairn_schemas import topics
from cairn_schemas.base import Actor
from cairn_schemas.cloudevents import Envelope, to_kafka
from cairn_schemas.events import MessagePosted
from fastapi import FastAPI
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


async def test_an_operator_lists_the_dead_letters_and_replays_one_once_the_cause_is_fixed(
    settings: ServiceSettings,
    db: Database,
    kafka_bootstrap: str,
    topic: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"dlqcli-{uuid.uuid4().hex[:8]}"
    dlq = topics.dead_letter(name)
    await create_topics(kafka_bootstrap, {topic: 1, dlq: 1})
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS effects"))
        await conn.execute(text("CREATE TABLE effects (message_id text)"))
    router = EventRouter(name)
    broken = {"m1"}
    deliveries: dict[str, int] = {}

    @router.on(MessagePosted)
    async def on_posted(envelope: Envelope[MessagePosted]) -> None:
        mid = envelope.event.message_id
        deliveries[mid] = deliveries.get(mid, 0) + 1
        if mid in broken:
            raise RuntimeError("the payment provider is down")

        async def effect(session: AsyncSession) -> None:
            await (await session.connection()).execute(
                text("INSERT INTO effects VALUES (:m)"), {"m": mid}
            )

        await handle_once(db, router.consumer, envelope, effect)

    async def effects() -> list[str]:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT message_id FROM effects ORDER BY 1"))).all()
        return [r[0] for r in rows]

    cli = ServiceCLI(
        name=name,
        version="0",
        settings=lambda: settings,
        app=lambda _s: FastAPI(),
        broker=make_broker,
        worker=lambda _s: None,
        migrations_dir=Path("."),
    )

    async def run_cli(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(cli.main, ["dead-letters", *args])
        out, err = capsys.readouterr()
        return code, out, err

    broker = make_broker(settings)
    subscribe(broker, settings, router, topics=[topic], dlq_topic=dlq)
    await broker.start()
    try:
        m1 = to_kafka(posted(1), source="/cairn/test")
        m1_id = dict(m1.headers)["ce_id"].decode()
        await produce(settings, topic, m1.value, m1.headers)
        await produce(settings, topic, b"{not json", [("ce_specversion", b"1.0")])
        m2 = to_kafka(posted(2), source="/cairn/test")
        await produce(settings, topic, m2.value, m2.headers)
        await wait_for(lambda: _eq(effects, ["m2"]))
        await read_all(kafka_bootstrap, dlq, 2)  # both parked

        code, out, _ = await run_cli("--json")
        listed = [json.loads(line) for line in out.splitlines()]
        assert code == 0
        assert [(d["event_id"], d["event_type"]) for d in listed] == [
            (m1_id, "cairn.message.posted"),
            (None, None),
        ]
        assert listed[0]["reason"].startswith("handler failed 3 times: RuntimeError")
        assert listed[0]["original_topic"] == topic
        assert listed[0]["key"] == "ct_1"
        assert listed[1]["reason"].startswith("invalid event")

        broken.clear()  # the provider is back
        code, out, _ = await run_cli("--replay", m1_id)
        assert (code, out.strip()) == (0, f"replayed {m1_id} to {topic}")
        await wait_for(lambda: _eq(effects, ["m1", "m2"]))

        # Replaying again (and "all", which skips the message that is not an event) is
        # harmless: the consumer sees m1 once more and its inbox skips it.
        seen = deliveries["m1"]
        code, out, _ = await run_cli("--replay-all")
        assert (code, out.strip()) == (0, f"replayed {m1_id} to {topic}")
        await wait_for(lambda: _eq_int(deliveries, "m1", seen + 1))
        assert await effects() == ["m1", "m2"]

        code, _, err = await run_cli("--replay", "no-such-event")
        assert code == 1
        assert "not replayed: no-such-event: no such event on the dead-letter topic" in err
        # The dead-letter topic is the record: replaying leaves it as it was.
        code, out, _ = await run_cli("--json")
        assert len(out.splitlines()) == 2
    finally:
        await broker.stop()


async def _eq(read: Any, expected: list[str]) -> bool:
    return bool(await read() == expected)


async def _eq_int(counts: dict[str, int], key: str, expected: int) -> bool:
    return counts.get(key) == expected
