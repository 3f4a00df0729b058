"""The changes of one contract, as its live-updates stream reads them (decision 33).

Every change of a contract or one of its milestones is a history row written by the unit
of work; a stream remembers where it is as a :class:`Cursor` (the last contract-history
and milestone-history ids it sent) and reads the rows after it. One contract's changes are
serialised by its row lock, so its history ids grow in commit order and nothing committed
later can appear behind the cursor.

:class:`ChangeFeed` wakes the streams of this process: on PostgreSQL a ``LISTEN`` on the
channel the unit of work notifies at commit (every API replica hears every commit); on
SQLite (``make run``) and while that connection is down, the streams poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped,unused-ignore]
from cairn_chassis.db import Database
from cairn_chassis.logging import get_logger
from sqlalchemy import func
from sqlmodel import col, select

from cairn_contracts.adapters.tables import ContractHistoryRow, HistoryRow
from cairn_contracts.adapters.unit_of_work import CHANGES_CHANNEL

log = get_logger(__name__)


@dataclass(frozen=True)
class Cursor:
    """Where a stream is: the last contract-history and milestone-history ids it sent."""

    contract_history_id: int = 0
    milestone_history_id: int = 0

    def __str__(self) -> str:
        return f"{self.contract_history_id}.{self.milestone_history_id}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """The cursor a client sent back as ``Last-Event-ID`` (None if it is not one)."""
        try:
            contract_part, milestone_part = (text or "").strip().split(".")
            cursor = cls(int(contract_part), int(milestone_part))
        except ValueError:
            return None
        return cursor if min(cursor.contract_history_id, cursor.milestone_history_id) >= 0 else None

    def after(self, row: ContractHistoryRow | HistoryRow) -> Cursor:
        """This cursor once ``row`` is sent."""
        assert row.id is not None
        if isinstance(row, HistoryRow):
            return Cursor(self.contract_history_id, row.id)
        return Cursor(row.id, self.milestone_history_id)


async def latest(db: Database, contract_id: str) -> Cursor:
    """The cursor after everything committed so far for the contract."""
    async with db.transaction() as session:
        last_contract = (
            await session.exec(
                select(func.max(ContractHistoryRow.id)).where(
                    ContractHistoryRow.contract_id == contract_id
                )
            )
        ).one()
        last_milestone = (
            await session.exec(
                select(func.max(HistoryRow.id)).where(HistoryRow.contract_id == contract_id)
            )
        ).one()
    return Cursor(last_contract or 0, last_milestone or 0)


async def changes_after(
    db: Database, contract_id: str, cursor: Cursor, *, limit: int = 200
) -> list[ContractHistoryRow | HistoryRow]:
    """The contract's and its milestones' history rows after ``cursor``, in the order they
    happened (a contract's change first when one command made both)."""
    async with db.transaction() as session:
        contract_rows = (
            await session.exec(
                select(ContractHistoryRow)
                .where(
                    ContractHistoryRow.contract_id == contract_id,
                    col(ContractHistoryRow.id) > cursor.contract_history_id,
                )
                .order_by(col(ContractHistoryRow.id))
                .limit(limit)
            )
        ).all()
        milestone_rows = (
            await session.exec(
                select(HistoryRow)
                .where(
                    HistoryRow.contract_id == contract_id,
                    col(HistoryRow.id) > cursor.milestone_history_id,
                )
                .order_by(col(HistoryRow.id))
                .limit(limit)
            )
        ).all()
    # Each table stays in id (commit) order; the two interleave by time.
    both: tuple[list[ContractHistoryRow | HistoryRow], ...] = (
        list(contract_rows),
        list(milestone_rows),
    )
    return list(heapq.merge(*both, key=lambda row: row.at))


class ChangeFeed:
    """Wakes this process's streams when a contract they follow changes."""

    def __init__(self, db: Database, *, poll_s: float = 0.5, listening_poll_s: float = 5.0):
        self.db = db
        self._poll_s = poll_s
        self._listening_poll_s = listening_poll_s
        self._listening = False
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._listener: asyncio.Task[None] | None = None

    @property
    def poll_s(self) -> float:
        """How long a stream waits before it looks anyway."""
        return self._listening_poll_s if self._listening else self._poll_s

    def subscribe(self, contract_id: str) -> asyncio.Event:
        """An event set whenever ``contract_id`` changes (start listening if not yet)."""
        if self._listener is None and self.db.is_postgres:
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        wake = asyncio.Event()
        self._waiters.setdefault(contract_id, set()).add(wake)
        return wake

    def unsubscribe(self, contract_id: str, wake: asyncio.Event) -> None:
        """The stream ended."""
        waiters = self._waiters.get(contract_id, set())
        waiters.discard(wake)
        if not waiters:
            self._waiters.pop(contract_id, None)

    async def wait(self, wake: asyncio.Event) -> None:
        """Until the contract changes or the poll interval passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=self.poll_s)
        wake.clear()

    def _notified(self, contract_id: str) -> None:
        for wake in self._waiters.get(contract_id, ()):
            wake.set()

    async def _listen(self) -> None:
        """Keep a LISTEN connection; reconnect when it drops (the streams poll meanwhile)."""
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("change_feed.listen_failed", error=repr(exc))
            finally:
                self._listening = False
            await asyncio.sleep(1.0)

    async def _listen_once(self) -> None:
        url = self.db.engine.url.set(drivername="postgresql")
        lost = asyncio.Event()
        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(
                CHANGES_CHANNEL, lambda _c, _pid, _channel, payload: self._notified(payload)
            )
            self._listening = True
            for waiters in self._waiters.values():  # changes made before we listened
                for wake in waiters:
                    wake.set()
            await lost.wait()
        finally:
            if not conn.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close(timeout=2))

    async def close(self) -> None:
        """Stop listening."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
