"""The inbox: idempotent consumers (DESIGN §8).

A handler records ``(consumer, event_id)`` in the same transaction as its effect; a second
delivery of the same event finds the row and does nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_chassis.outbox import utcnow


class InboxRecord(SQLModel, table=True):
    """An event a consumer has already processed."""

    __tablename__ = "inbox"
    # The retention sweep's range scan (cairn_chassis.retention).
    __table_args__ = (Index("ix_inbox_processed_at", "processed_at"),)

    consumer: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(primary_key=True, max_length=128)
    event_type: str = Field(max_length=128)
    processed_at: datetime = Field(default_factory=utcnow)


async def record_once(session: AsyncSession, consumer: str, event_id: str, event_type: str) -> bool:
    """Record the event for ``consumer``; False if it was already processed.

    On PostgreSQL a concurrent delivery of the same event waits on the first one's row
    lock and then sees the conflict, so exactly one transaction applies the effect.
    """
    values = {
        "consumer": consumer,
        "event_id": event_id,
        "event_type": event_type,
        "processed_at": utcnow(),
    }
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(InboxRecord)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    )
    result = await (await session.connection()).execute(stmt)
    return bool(result.rowcount)
