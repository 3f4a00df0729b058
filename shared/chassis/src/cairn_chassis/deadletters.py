"""Reading and replaying a consumer group's dead-letter topic (``cairn-<svc> dead-letters``).

A consumer parks a message on ``cairn.dlq.<group>.v1`` after its retries ran out
(:mod:`cairn_chassis.messaging`), with the original key, body and ``ce_*`` headers plus
``dlq_*`` headers saying why and where from. Replaying publishes the original message back
to its original topic — same key (so per-contract order holds), body and headers, without
the ``dlq_*`` ones — and waits for the broker's acknowledgement. It is safe to repeat:
every consumer records the event ids it processed (the inbox), so a group that had already
handled an event skips it. The dead-letter topic itself is left as it is, as the record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cairn_schemas import topics as cairn_topics

from cairn_chassis.kafka_security import client_kwargs
from cairn_chassis.settings import ServiceSettings

DLQ_HEADER_PREFIX = "dlq_"


@dataclass(frozen=True)
class DeadLetter:
    """One parked message, as it sits on the dead-letter topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return ""

    @property
    def event_id(self) -> str:
        return self.header("ce_id")

    @property
    def refusal(self) -> str | None:
        """Why this letter cannot be replayed, or None if it can."""
        if not self.event_id:
            # A producer's bug: it would only be parked again.
            return "not a Cairn event"
        original = self.header("dlq_original_topic")
        if not original:
            return "its original topic is unknown"
        if original in cairn_topics.COMPACTED:
            # Compaction keeps the last record per key: an old version republished now
            # would replace the latest one for every consumer that starts from scratch.
            return (
                f"{original} is compacted and an old record republished would hide the "
                "latest; publish a new version instead (save the marketplace's settings again)"
            )
        return None

    @property
    def replayable(self) -> bool:
        return self.refusal is None

    def summary(self) -> dict[str, Any]:
        """What an operator needs to decide: which event, from where, when, and why."""
        return {
            "dlq_partition": self.partition,
            "dlq_offset": self.offset,
            "event_id": self.event_id or None,
            "event_type": self.header("ce_type") or None,
            "subject": self.header("ce_subject") or None,
            "key": self.key.decode(errors="replace") if self.key is not None else None,
            "original_topic": self.header("dlq_original_topic") or None,
            "original_offset": self.header("dlq_original_offset") or None,
            "consumer": self.header("dlq_consumer") or None,
            "failed_at": self.header("dlq_failed_at") or None,
            "reason": self.header("dlq_reason"),
            "replayable": self.replayable,
        }


async def read_dead_letters(settings: ServiceSettings, topic: str) -> list[DeadLetter]:
    """Every message on ``topic`` from the beginning up to its end when called, in
    partition and offset order. Uses no consumer group: reading commits nothing."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        **client_kwargs(settings),
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():  # also loads the cluster's metadata
            return []
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        if not partitions:
            return []
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        letters: list[DeadLetter] = []
        pending = {tp for tp in tps if ends[tp] > await consumer.position(tp)}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batches.items():
                letters.extend(
                    DeadLetter(
                        partition=r.partition,
                        offset=r.offset,
                        key=r.key,
                        value=r.value or b"",
                        headers=tuple(r.headers or ()),
                    )
                    for r in records
                    if r.offset < ends[tp]
                )
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return sorted(letters, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


async def replay(settings: ServiceSettings, letters: Iterable[DeadLetter]) -> list[DeadLetter]:
    """Publish each letter back to its original topic (acks=all); returns those sent."""
    todo = [d for d in letters if d.replayable]
    if not todo:
        return []
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        **client_kwargs(settings),
    )
    await producer.start()
    try:
        for letter in todo:
            await producer.send_and_wait(
                letter.header("dlq_original_topic"),
                letter.value,
                key=letter.key,
                headers=[(k, v) for k, v in letter.headers if not k.startswith(DLQ_HEADER_PREFIX)],
            )
    finally:
        await producer.stop()
    return todo
