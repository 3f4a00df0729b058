"""Retention: the bookkeeping rows that only guard against duplicates are purged once no
duplicate can arrive any more, so a service's database does not grow without bound.

What is kept, and for how long, is each rule's business; the defaults
(:func:`chassis_rules`) are

- published outbox rows: the event is in the broker, the row only helps debugging;
- inbox rows: they must outlive the topics' retention (30 days in the Kustomize base),
  or a consumer replaying a topic from the start would apply an event twice;
- Idempotency-Key answers: a client retries within minutes; a week covers any front end.

A purge deletes in small batches, each its own transaction, so it never holds many locks
or a long transaction; on PostgreSQL the rows are claimed with ``SKIP LOCKED``, so every
worker replica can run it at once without waiting on the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import ColumnElement, Table, delete, literal_column, select

from cairn_chassis.db import Database
from cairn_chassis.idempotency import IdempotentResponse
from cairn_chassis.inbox import InboxRecord
from cairn_chassis.logging import get_logger
from cairn_chassis.metrics import worker_only
from cairn_chassis.outbox import OutboxMessage
from cairn_chassis.settings import ServiceSettings

log = get_logger(__name__)

RETENTION_PURGED = Counter(
    "cairn_retention_purged_total", "Rows deleted by the retention sweep", ["table"]
)
worker_only(RETENTION_PURGED)


@dataclass(frozen=True)
class Purge:
    """Delete rows of ``table`` whose ``age_column`` is older than ``keep``, among those
    that also match ``only`` (for instance: already published)."""

    table: Table
    age_column: ColumnElement[Any]
    keep: timedelta
    only: ColumnElement[bool] | None = None

    @property
    def name(self) -> str:
        return self.table.name


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def chassis_rules(settings: ServiceSettings) -> list[Purge]:
    """The chassis' own tables, with the retention the settings give them."""
    rules: list[Purge] = []
    if settings.retention_outbox_days > 0:
        outbox = _table(OutboxMessage)
        rules.append(
            Purge(
                outbox,
                outbox.c.published_at,
                timedelta(days=settings.retention_outbox_days),
                outbox.c.published_at.is_not(None),
            )
        )
    if settings.retention_inbox_days > 0:
        inbox = _table(InboxRecord)
        rules.append(
            Purge(inbox, inbox.c.processed_at, timedelta(days=settings.retention_inbox_days))
        )
    if settings.retention_idempotency_key_hours > 0:
        keys = _table(IdempotentResponse)
        rules.append(
            Purge(
                keys,
                keys.c.created_at,
                timedelta(hours=settings.retention_idempotency_key_hours),
            )
        )
    return rules


async def purge_expired(
    db: Database, rules: Sequence[Purge], now: datetime, *, batch_size: int = 1000
) -> dict[str, int]:
    """Delete every expired row the rules name; returns the count deleted per table."""
    deleted: dict[str, int] = {}
    row_id: ColumnElement[Any] = literal_column("ctid" if db.is_postgres else "rowid")
    for rule in rules:
        condition = rule.age_column < now - rule.keep
        if rule.only is not None:
            condition = condition & rule.only
        expired = select(row_id).select_from(rule.table).where(condition).limit(batch_size)
        if db.is_postgres:
            expired = expired.with_for_update(skip_locked=True)
        total = 0
        while True:
            async with db.transaction() as session:
                result = await (await session.connection()).execute(
                    delete(rule.table).where(row_id.in_(expired.scalar_subquery()))
                )
            count = int(result.rowcount or 0)
            total += count
            if count < batch_size:
                break
        if total:
            RETENTION_PURGED.labels(rule.name).inc(total)
            log.info("retention.purged", table=rule.name, rows=total)
        deleted[rule.name] = total
    return deleted
