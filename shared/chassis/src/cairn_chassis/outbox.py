"""The transactional outbox: events are rows written in the same transaction as the state
change, and a relay publishes them to Kafka afterwards (DESIGN §8).

The relay claims rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several relays can
run side by side; it publishes a row only when every earlier unpublished row with the same
key is in its own batch, which keeps per-key (per-contract) order across relays. A row is
marked published only after the broker confirmed it (acks=all), so a crash between publish
and commit re-publishes: consumers dedupe by event id (the inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped,unused-ignore]
from cairn_schemas.base import Event
from cairn_schemas.cloudevents import CAUSATIONID, TRACEPARENT, to_kafka
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge
from sqlalchemy import BigInteger, Column, Index, Integer, Text, text
from sqlmodel import Field, SQLModel, col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_chassis.correlation import causing_event
from cairn_chassis.db import OUTBOX_CHANNEL, OUTBOX_WRITTEN, Database
from cairn_chassis.logging import get_logger
from cairn_chassis.metrics import worker_only
from cairn_chassis.tracing import current_traceparent, parent_context, tracer

log = get_logger(__name__)

OUTBOX_PUBLISHED = Counter(
    "cairn_outbox_published_total", "Outbox rows published to the broker", ["topic"]
)
OUTBOX_PENDING = Gauge("cairn_outbox_pending", "Outbox rows not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "cairn_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest outbox row not yet published (0 when none waits)",
)
OUTBOX_PUBLISH_ERRORS = Counter(
    "cairn_outbox_publish_errors_total", "Outbox publish batches that failed"
)
worker_only(OUTBOX_PUBLISHED, OUTBOX_PENDING, OUTBOX_OLDEST_AGE, OUTBOX_PUBLISH_ERRORS)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class OutboxMessage(SQLModel, table=True):
    """One event waiting to be (or already) published."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unpublished", "published_at", "id"),
        Index("ix_outbox_key_unpublished", "key", "id"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    event_id: str = Field(max_length=64, unique=True)
    event_type: str = Field(max_length=128)
    topic: str = Field(max_length=128)
    key: str = Field(max_length=128)
    headers: str = Field(sa_column=Column(Text, nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = Field(default=None, nullable=True)
    # The W3C trace context the event was written in (a request's, a consumer's): the relay
    # publishes it as ``ce_traceparent`` so the trace goes on in the consumers.
    traceparent: str | None = Field(default=None, max_length=128, nullable=True)


def add_event(
    session: AsyncSession, event: Event, *, source: str, event_id: str | None = None
) -> str:
    """Write ``event`` to the outbox inside the caller's transaction; return its id.

    The row keeps the current trace context, and the event names the event being handled
    (if any) as its cause (``ce_causationid``)."""
    record = to_kafka(
        event, source=source, event_id=event_id, extensions={CAUSATIONID: causing_event()}
    )
    headers = {k: v.decode() for k, v in record.headers}
    row = OutboxMessage(
        event_id=headers["ce_id"],
        event_type=event.event_type,
        topic=record.topic,
        key=record.key.decode(),
        headers=json.dumps(headers),
        payload=record.value.decode(),
        traceparent=current_traceparent(),
    )
    session.add(row)
    session.info[OUTBOX_WRITTEN] = True  # Database.transaction wakes the relays at commit
    return row.event_id


PublishFn = Callable[[str, bytes, bytes, dict[str, str]], Awaitable[Awaitable[Any]]]
"""publish(topic, key, value, headers) -> an awaitable that resolves once the broker acked."""


class OutboxRelay:
    """Publishes unpublished outbox rows in id order, per key, with broker confirmation."""

    def __init__(
        self,
        db: Database,
        publish: PublishFn,
        *,
        batch_size: int = 200,
        poll_interval_s: float = 0.02,
        listening_poll_interval_s: float = 1.0,
    ) -> None:
        self._db = db
        self._publish = publish
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        # While a LISTEN connection is up, commits wake the relay and the poll is only the
        # fallback; without one (SQLite, connection lost) it polls at ``poll_interval_s``.
        self._listening_poll_interval_s = max(listening_poll_interval_s, poll_interval_s)
        self._listening = False
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Ask the loop to finish its current batch and return."""
        self._stopping.set()

    async def run(self) -> None:
        """Relay until stopped; broker or database failures back off and retry."""
        listener = asyncio.create_task(self._listen()) if self._db.is_postgres else None
        backoff = 0.1
        try:
            while not self._stopping.is_set():
                # A commit notified while this pass runs makes the next pause end at once.
                self._wake.clear()
                try:
                    sent = await self.relay_once()
                    backoff = 0.1
                except Exception as exc:
                    OUTBOX_PUBLISH_ERRORS.inc()
                    log.warning("outbox.relay_failed", error=repr(exc), retry_in_s=backoff)
                    sent = 0
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if sent == 0:
                    await self._pause()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _pause(self) -> None:
        """Until the next poll, a commit's notification, or stop."""
        seconds = self._listening_poll_interval_s if self._listening else self._poll_interval_s
        waits = [
            asyncio.ensure_future(self._stopping.wait()),
            asyncio.ensure_future(self._wake.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _listen(self) -> None:
        """Keep a LISTEN connection to :data:`OUTBOX_CHANNEL`; reconnect when it drops."""
        while not self._stopping.is_set():
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox.listen_failed", error=repr(exc))
            finally:
                self._listening = False
            await self._sleep(1.0)

    async def _listen_once(self) -> None:
        url = self._db.engine.url.set(drivername="postgresql")
        lost = asyncio.Event()
        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(OUTBOX_CHANNEL, lambda *_args: self._wake.set())
            self._listening = True
            self._wake.set()  # rows committed before we listened: look once now
            await lost.wait()
        finally:
            if not conn.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close(timeout=2))

    async def relay_once(self) -> int:
        """Claim one batch, publish it, mark it published; return how many rows were sent."""
        async with self._db.transaction() as session:
            rows = await self._claim(session)
            if not rows:
                return 0
            confirmations = [await self._publish_row(row) for row in rows]
            # Every row must be confirmed by the broker before any is marked sent.
            for confirmation in confirmations:
                await confirmation
            now = utcnow()
            ids = [row.id for row in rows]
            await session.exec(
                update(OutboxMessage).where(col(OutboxMessage.id).in_(ids)).values(published_at=now)
            )
            for row in rows:
                OUTBOX_PUBLISHED.labels(row.topic).inc()
            return len(rows)

    async def _publish_row(self, row: OutboxMessage) -> Awaitable[Any]:
        """Send one row in a PRODUCER span that continues the trace it was written in;
        its ``ce_traceparent`` is that context (the tracing extension carries the
        context of the event's creation), or this span's for a row written outside one."""
        headers: dict[str, str] = json.loads(row.headers)
        with tracer().start_as_current_span(
            f"{row.topic} publish",
            context=parent_context(row.traceparent),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": row.topic,
                "messaging.message.id": row.event_id,
                "cloudevents.event_type": row.event_type,
            },
        ):
            traceparent = row.traceparent or current_traceparent()
            if traceparent:
                headers[f"ce_{TRACEPARENT}"] = traceparent
            return await self._publish(row.topic, row.key.encode(), row.payload.encode(), headers)

    async def _claim(self, session: AsyncSession) -> list[OutboxMessage]:
        query = (
            select(OutboxMessage)
            .where(col(OutboxMessage.published_at).is_(None))
            .order_by(col(OutboxMessage.id))
            .limit(self._batch_size)
        )
        if self._db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        rows = list((await session.exec(query)).all())
        if not rows or not self._db.is_postgres:
            return rows
        # Keep per-key order across relays: drop any row that has an earlier unpublished
        # row with the same key held by another relay (not in our batch).
        first_id: dict[str, int | None] = {}
        for row in rows:
            first_id.setdefault(row.key, row.id)
        blocked: set[str] = set()
        result = await (await session.connection()).execute(
            text(
                "SELECT DISTINCT o.key FROM outbox o WHERE o.published_at IS NULL "
                "AND o.key = ANY(:keys) AND o.id < :max_id AND NOT (o.id = ANY(:ids))"
            ).bindparams(keys=list(first_id), max_id=rows[-1].id, ids=[r.id for r in rows])
        )
        for (key,) in result:
            blocked.add(key)
        if not blocked:
            return rows
        # Any earlier row of a blocked key may be below some of our rows: keep only rows
        # of that key that come before the first foreign earlier row. Simplest safe choice:
        # leave every row of a blocked key to the relay that holds its earliest row.
        return [row for row in rows if row.key not in blocked]


async def measure_outbox(db: Database, now: datetime) -> tuple[int, float]:
    """How many outbox rows wait to be published and how old the oldest is (seconds);
    sets ``cairn_outbox_pending`` and ``cairn_outbox_oldest_unpublished_age_seconds``."""
    async with db.transaction() as session:
        result = await (await session.connection()).execute(
            text("SELECT count(*), min(created_at) FROM outbox WHERE published_at IS NULL")
        )
        count, oldest = result.one()
    if isinstance(oldest, str):  # SQLite hands back text
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    OUTBOX_PENDING.set(int(count))
    OUTBOX_OLDEST_AGE.set(age)
    return int(count), age


async def count_pending(db: Database) -> int:
    """How many outbox rows wait to be published."""
    count, _age = await measure_outbox(db, utcnow())
    return count
