"""The unit of work on the service's database (PostgreSQL or SQLite).

On commit every recorded change becomes its outbox rows and its history row, in the
transaction of the aggregates' own rows; on PostgreSQL a ``NOTIFY`` names each changed
contract, so the live-updates streams of every API replica wake at once (decision 33)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, suppress
from datetime import datetime
from types import TracebackType
from typing import Any

from cairn_chassis.db import Database
from cairn_chassis.outbox import add_event, utcnow
from cairn_schemas.base import Event
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_contracts.adapters.repository import SqlContracts, SqlJobs, SqlMarketplaces
from cairn_contracts.adapters.tables import ContractHistoryRow, HistoryRow
from cairn_contracts.service.unit_of_work import Recorded, UnitOfWork

SOURCE = "/cairn/contracts"
#: PostgreSQL channel a commit notifies with the id of each contract it changed.
CHANGES_CHANNEL = "cairn_contract_changes"


class _Rollback(Exception):
    """Ends a transaction that did not commit."""


class SqlUnitOfWork(UnitOfWork):
    """One database transaction (a savepoint inside an Idempotency-Key request's), or a
    part of the caller's ``session`` (a consumer's inbox transaction), which then commits."""

    contracts: SqlContracts

    def __init__(
        self, db: Database, session: AsyncSession | None = None, *, at: datetime | None = None
    ) -> None:
        super().__init__()
        self.db = db
        self._at = at  # the timers act at the time of their pass
        self._joined = session
        self._transaction: AbstractAsyncContextManager[AsyncSession] | None = None

    def now(self) -> datetime:
        return self._at or utcnow()

    async def __aenter__(self) -> SqlUnitOfWork:
        await super().__aenter__()
        if self._joined is not None:
            self.session = self._joined
        else:
            self._transaction = self.db.transaction()
            self.session = await self._transaction.__aenter__()
        self.contracts = SqlContracts(self.session)
        self.jobs = SqlJobs(self.session)
        self.marketplaces = SqlMarketplaces(self.session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is None:
            return  # the caller's transaction commits or rolls back
        if exc is None and not self.committed:
            exc_type, exc = _Rollback, _Rollback()  # nothing committed: leave no trace
        if exc is None:
            await transaction.__aexit__(None, None, None)
            return
        with suppress(_Rollback):
            await transaction.__aexit__(exc_type, exc, tb)

    async def _write(self, changes: list[Recorded], loose: list[Event]) -> None:
        session = self.session
        await self.contracts.save()
        for event in loose:
            add_event(session, event, source=SOURCE)
        changed: set[str] = set()
        for contract, milestone, change in changes:
            ids = [add_event(session, event, source=SOURCE) for event in change.published]
            changed.add(contract.id)
            if not change.history:
                continue
            common: dict[str, Any] = {
                "contract_id": contract.id,
                "command": str(change.command),
                "actor_id": change.caller.user_id,
                "actor_role": change.caller.role,
                "from_state": change.from_state,
                "to_state": change.to_state,
                "event_id": ids[0] if ids else None,
                "at": change.at,
            }
            if milestone is None:
                session.add(ContractHistoryRow(**common))
            else:
                assert change.version is not None
                session.add(HistoryRow(milestone_id=milestone.id, version=change.version, **common))
        await session.flush()
        if changed and self.db.is_postgres:
            connection = await session.connection()
            for contract_id in sorted(changed):
                await connection.execute(
                    text("SELECT pg_notify(:channel, :contract_id)"),
                    {"channel": CHANGES_CHANNEL, "contract_id": contract_id},
                )
