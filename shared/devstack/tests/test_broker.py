"""The local Kafka broker: what Cairn's outbox relay and consumers rely on."""

from __future__ import annotations

import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from cairn_devstack.broker import LOCAL_CONSUMER_SETTINGS, create_topics


def _name(prefix: str) -> str:
    return f"devstack.{prefix}.{uuid.uuid4().hex[:8]}"


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, str]]) -> None:
    # The outbox relay's settings: acks from all replicas, no idempotent producer (tansu
    # refuses it).
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for key, value, event_id in records:
            await producer.send_and_wait(
                topic, value, key=key, headers=[("ce_id", event_id.encode())]
            )
    finally:
        await producer.stop()


def _consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **LOCAL_CONSUMER_SETTINGS,
    )


async def test_group_consumer_gets_keys_headers_and_per_key_order(kafka_bootstrap: str) -> None:
    topic = _name("roundtrip")
    await create_topics(kafka_bootstrap, {topic: 3})
    records = [
        (b"contract-1", b"created", "e1"),
        (b"contract-2", b"created", "e2"),
        (b"contract-1", b"funded", "e3"),
        (b"contract-1", b"released", "e4"),
    ]
    await _produce(kafka_bootstrap, topic, records)

    consumer = _consumer(kafka_bootstrap, topic, _name("group"))
    await consumer.start()
    try:
        got: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 15
        while len(got) < len(records) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            got.extend(m for msgs in batch.values() for m in msgs)
        await consumer.commit()
    finally:
        await consumer.stop()

    assert sorted((m.key, m.value) for m in got) == sorted((k, v) for k, v, _ in records)
    assert {dict(m.headers)["ce_id"] for m in got} == {b"e1", b"e2", b"e3", b"e4"}
    contract_1 = [m for m in got if m.key == b"contract-1"]
    assert len({m.partition for m in contract_1}) == 1  # one key, one partition
    assert [m.value for m in sorted(contract_1, key=lambda m: m.offset)] == [
        b"created",
        b"funded",
        b"released",
    ]


async def test_committed_offsets_survive_a_consumer_restart(kafka_bootstrap: str) -> None:
    topic, group = _name("commit"), _name("group")
    await create_topics(kafka_bootstrap, {topic: 1})
    await _produce(kafka_bootstrap, topic, [(b"k", b"old", "e1")])
    first = _consumer(kafka_bootstrap, topic, group)
    await first.start()
    try:
        assert (await first.getone()).value == b"old"
        await first.commit()
    finally:
        await first.stop()

    await _produce(kafka_bootstrap, topic, [(b"k", b"new", "e2")])
    second = _consumer(kafka_bootstrap, topic, group)
    await second.start()
    try:
        assert (await second.getone()).value == b"new"  # "old" is not redelivered
    finally:
        await second.stop()


async def test_create_topics_is_idempotent_and_compacts_settings(kafka_bootstrap: str) -> None:
    events, settings = _name("events"), _name("settings")
    await create_topics(kafka_bootstrap, {events: 2, settings: 1}, compacted={settings})
    await create_topics(kafka_bootstrap, {events: 2, settings: 1}, compacted={settings})

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert {events, settings} <= set(await admin.list_topics())
        [described] = await admin.describe_topics([events])
        assert len(described["partitions"]) == 2
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings)]
        )
    finally:
        await admin.close()
    entries = {e[0]: e[1] for e in response.resources[0][4]}
    assert entries["cleanup.policy"] == "compact"
