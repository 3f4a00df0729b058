"""Kafka defaults every Cairn consumer and publisher shares (DESIGN §8).

- Subscribers set their ack policy explicitly (``NACK_ON_ERROR``: commit only after the
  handler finished), with a group id and ``auto_offset_reset="earliest"``.
- A failing handler is retried in-process with exponential backoff a bounded number of
  times; then the message goes to the consumer's dead-letter topic with the reason, and the
  partition keeps flowing. A message that is not a valid Cairn event goes there at once.
- If even the dead-letter publish fails, the exception escapes, the message is nacked and
  redelivered: nothing is acknowledged that was not handled or parked.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka.structs import ConsumerRecord
from cairn_schemas.base import Event
from cairn_schemas.cloudevents import (
    CAUSATIONID,
    TRACEPARENT,
    Envelope,
    InvalidEvent,
    from_kafka,
)
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_chassis.asyncapi import declare_publication, declare_subscription
from cairn_chassis.correlation import handling_event
from cairn_chassis.db import Database
from cairn_chassis.inbox import record_once
from cairn_chassis.kafka_security import broker_security
from cairn_chassis.logging import get_logger
from cairn_chassis.metrics import worker_only
from cairn_chassis.settings import ServiceSettings
from cairn_chassis.tracing import parent_context, tracer

log = get_logger(__name__)

E = TypeVar("E", bound=Event)
Handler = Callable[[Envelope[Any]], Awaitable[None]]

EVENTS_CONSUMED = Counter(
    "cairn_events_consumed_total", "Events handled by a consumer", ["consumer", "type", "outcome"]
)
EVENT_HANDLE_SECONDS = Histogram(
    "cairn_event_handle_seconds", "Time to handle one event", ["consumer", "type"]
)
worker_only(EVENTS_CONSUMED, EVENT_HANDLE_SECONDS)


def make_broker(settings: ServiceSettings) -> KafkaBroker:
    """A broker whose publishes wait for every in-sync replica (acks=all)."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        client_id=f"cairn-{settings.service_name}",
        security=broker_security(settings),
        logger=None,
    )


class EventRouter:
    """The event types one consumer group handles, each with its handler."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self.handlers: dict[str, Handler] = {}

    def on(
        self, event_cls: type[E]
    ) -> Callable[
        [Callable[[Envelope[E]], Awaitable[None]]], Callable[[Envelope[E]], Awaitable[None]]
    ]:
        """Register the decorated coroutine as the handler of ``event_cls``."""

        def register(
            fn: Callable[[Envelope[E]], Awaitable[None]],
        ) -> Callable[[Envelope[E]], Awaitable[None]]:
            self.handlers[event_cls.event_type] = fn
            return fn

        return register


async def handle_once(
    db: Database,
    consumer: str,
    envelope: Envelope[Any],
    effect: Callable[[AsyncSession], Awaitable[None]],
) -> bool:
    """Apply ``effect`` and record the event in the inbox in one transaction.

    Returns False (and does nothing) when this consumer already processed the event.
    """
    async with db.transaction() as session:
        if not await record_once(session, consumer, envelope.id, envelope.type):
            EVENTS_CONSUMED.labels(consumer, envelope.type, "duplicate").inc()
            return False
        await effect(session)
        return True


class Dispatcher:
    """Decodes a Kafka record into a Cairn event and runs its handler with retries."""

    def __init__(
        self,
        router: EventRouter,
        broker: KafkaBroker,
        dlq_topic: str,
        *,
        max_attempts: int = 5,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
    ) -> None:
        self.router = router
        self.broker = broker
        self.dlq_topic = dlq_topic
        self.max_attempts = max_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s

    async def __call__(self, msg: KafkaMessage) -> None:
        record = msg.raw_message
        assert isinstance(record, ConsumerRecord)
        await self.dispatch(record)

    async def dispatch(self, record: ConsumerRecord[Any, Any]) -> None:
        """Handle one record: decode, run the handler, park it in the DLQ if it keeps failing."""
        headers: Sequence[tuple[str, bytes]] = list(record.headers or ())
        try:
            envelope = from_kafka(headers, record.value or b"")
        except InvalidEvent as exc:
            await self._dead_letter(record, f"invalid event: {exc}")
            EVENTS_CONSUMED.labels(self.router.consumer, "invalid", "dead_lettered").inc()
            return
        handler = self.router.handlers.get(envelope.type)
        if handler is None:
            return  # not ours: other consumers of this topic care about it
        contract_id = getattr(envelope.event, "contract_id", None)
        transport = dict(headers).get("traceparent")
        with (
            handling_event(
                event_id=envelope.id,
                event_type=envelope.type,
                consumer=self.router.consumer,
                contract_id=contract_id if isinstance(contract_id, str) else None,
            ),
            tracer().start_as_current_span(
                f"{self.router.consumer} process {envelope.type}",
                # The event's creation context (ce_traceparent), else the record's own.
                context=parent_context(
                    envelope.extensions.get(TRACEPARENT),
                    transport.decode(errors="replace") if isinstance(transport, bytes) else None,
                ),
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": record.topic,
                    "messaging.consumer.group.name": self.router.consumer,
                    "messaging.message.id": envelope.id,
                    "messaging.kafka.offset": record.offset,
                    "cloudevents.event_type": envelope.type,
                },
            ),
        ):
            await self._handle(record, envelope, handler)

    async def _handle(
        self, record: ConsumerRecord[Any, Any], envelope: Envelope[Any], handler: Handler
    ) -> None:
        delay = self.backoff_initial_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                with EVENT_HANDLE_SECONDS.labels(self.router.consumer, envelope.type).time():
                    await handler(envelope)
                EVENTS_CONSUMED.labels(self.router.consumer, envelope.type, "ok").inc()
                return
            except Exception as exc:
                log.warning(
                    "consumer.handler_failed",
                    subject=envelope.subject,
                    milestone_id=getattr(envelope.event, "milestone_id", None),
                    attempt=attempt,
                    error=repr(exc),
                )
                if attempt == self.max_attempts:
                    reason = "".join(traceback.format_exception_only(exc)).strip()
                    await self._dead_letter(record, f"handler failed {attempt} times: {reason}")
                    EVENTS_CONSUMED.labels(
                        self.router.consumer, envelope.type, "dead_lettered"
                    ).inc()
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], reason: str) -> None:
        headers = {
            k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v))
            for k, v in (record.headers or ())
        }
        headers.update(
            {
                "dlq_reason": reason[:2000],
                "dlq_consumer": self.router.consumer,
                "dlq_original_topic": record.topic,
                "dlq_original_partition": str(record.partition),
                "dlq_original_offset": str(record.offset),
                "dlq_failed_at": datetime.now(UTC).isoformat(),
            }
        )
        log.error(
            "consumer.dead_lettered",
            consumer=self.router.consumer,
            topic=record.topic,
            offset=record.offset,
            reason=reason,
        )
        await self.broker.publish(
            record.value or b"", self.dlq_topic, key=record.key, headers=headers
        )


def subscribe(
    broker: KafkaBroker,
    settings: ServiceSettings,
    router: EventRouter,
    *,
    topics: Sequence[str],
    dlq_topic: str,
    description: str = "",
) -> Dispatcher:
    """Attach ``router`` to ``topics`` as consumer group ``router.consumer``."""
    dispatcher = Dispatcher(
        router,
        broker,
        dlq_topic,
        max_attempts=settings.consumer_max_attempts,
        backoff_initial_s=settings.consumer_backoff_initial_s,
        backoff_max_s=settings.consumer_backoff_max_s,
    )
    handled = ", ".join(sorted(router.handlers))
    subscriber = broker.subscriber(
        *topics,
        group_id=router.consumer,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        max_poll_records=settings.kafka_max_poll_records,
        title=f"{router.consumer}:{'+'.join(topics)}",
        description=description or f"Consumer group {router.consumer}; handles: {handled}",
    )
    subscriber(dispatcher.__call__)
    declare_subscription(broker, router.consumer, topics, sorted(router.handlers), description)
    return dispatcher


async def publish_record(
    broker: KafkaBroker, topic: str, key: bytes, value: bytes, headers: dict[str, str]
) -> Awaitable[Any]:
    """Send one record; return an awaitable that resolves when the broker acknowledged it.

    FastStream's own ``correlation_id`` header (random unless given) carries the event's
    cause, or its own id for an event nothing caused: the chain is followed by event ids.
    """
    correlation = headers.get(f"ce_{CAUSATIONID}") or headers.get("ce_id")
    future: Awaitable[Any] = await broker.publish(
        value, topic, key=key, headers=headers, no_confirm=True, correlation_id=correlation
    )
    return future


def document_publications(broker: KafkaBroker, service: str, topic_names: Sequence[str]) -> None:
    """Declare what ``service`` publishes (through its outbox relay), for its AsyncAPI
    document (:mod:`cairn_chassis.asyncapi`)."""
    declare_publication(broker, service, topic_names)
