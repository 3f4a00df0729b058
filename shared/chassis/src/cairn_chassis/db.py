"""Async SQLModel engine and sessions for PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import Select, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_chassis.tracing import instrument_engine


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # pysqlite's own transaction handling must be off for BEGIN IMMEDIATE to count.
            conn.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin_immediate(conn: Any) -> None:
            # Writers take the lock at BEGIN so two processes never deadlock on upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        instrument_engine(engine.sync_engine)
        return engine
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    instrument_engine(engine.sync_engine)
    return engine


#: PostgreSQL channel on which a commit that wrote outbox rows wakes the relays.
OUTBOX_CHANNEL = "cairn_outbox"
#: ``session.info`` flag set by ``outbox.add_event``: this transaction wrote outbox rows.
OUTBOX_WRITTEN = "cairn_outbox_written"


def is_postgres(engine: AsyncEngine) -> bool:
    """True on PostgreSQL (row locks with SKIP LOCKED are available)."""
    return engine.dialect.name == "postgresql"


_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")  # any select


def locked(query: _Query, *, skip_locked: bool = False) -> _Query:
    """``query`` as ``SELECT … FOR UPDATE``, refreshing the objects it returns.

    Without ``populate_existing`` a row this session read before taking the lock comes
    back as that earlier (possibly stale) object instead of the row as committed by whoever
    held the lock before us — so two concurrent commands could both apply (found twice: a
    milestone released three times, Cairn's own refund booked again as external)."""
    return query.with_for_update(skip_locked=skip_locked).execution_options(populate_existing=True)


#: The request-wide transaction, if one is open in this context (see ``request_transaction``).
#: Only the task that opened it joins it: a task spawned meanwhile inherits the context
#: but must not share the session (nor outlive its transaction).
_AMBIENT: ContextVar[tuple[Database, AsyncSession, asyncio.Task[Any] | None] | None] = ContextVar(
    "cairn_ambient_transaction", default=None
)


class Database:
    """Owns the engine and hands out transactional sessions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL."""
        return is_postgres(self.engine)

    def session(self) -> AsyncSession:
        """A new session (caller manages the transaction)."""
        return self._sessions()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error.

        On PostgreSQL a transaction that wrote outbox rows also notifies
        :data:`OUTBOX_CHANNEL`; the notification is delivered at commit (never on rollback),
        so the relays publish at once instead of at their next poll.

        Inside :meth:`request_transaction` this is a SAVEPOINT of the request's transaction:
        an error rolls back this block only, and nothing commits before the request does.
        """
        ambient = _AMBIENT.get()
        if ambient is not None and ambient[0] is self and ambient[2] is asyncio.current_task():
            session = ambient[1]
            async with session.begin_nested():
                yield session
            return
        async with self._sessions() as session, session.begin():
            yield session
            await self._notify_outbox(session)

    @asynccontextmanager
    async def request_transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction that every :meth:`transaction` in this context joins.

        Used by the Idempotency-Key middleware so that a command's writes and the answer
        stored for its key commit together: a crash between the two cannot leave a done
        command without its answer. Committed on success, rolled back on error.
        """
        async with self._sessions() as session, session.begin():
            token = _AMBIENT.set((self, session, asyncio.current_task()))
            try:
                yield session
            finally:
                _AMBIENT.reset(token)
            await self._notify_outbox(session)

    async def _notify_outbox(self, session: AsyncSession) -> None:
        if session.info.pop(OUTBOX_WRITTEN, False) and self.is_postgres:
            await (await session.connection()).exec_driver_sql(f"NOTIFY {OUTBOX_CHANNEL}")

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
