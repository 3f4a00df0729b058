"""The unit of work: one transaction around a use case. Handlers change aggregates; on
:meth:`UnitOfWork.commit` the changes they recorded are written — each event to the
outbox, each transition to its history — with the aggregates themselves, all at once.
This is the one place the contracts service writes events."""

from __future__ import annotations

import abc
from datetime import datetime
from types import TracebackType
from typing import Protocol

from cairn_schemas.base import Event
from cairn_schemas.settings import MarketplaceSettings

from cairn_contracts.domain.model import Contract, Milestone
from cairn_contracts.domain.records import Change, Job


class Contracts(Protocol):
    """Where contracts (with their milestones) are kept."""

    seen: dict[str, Contract]

    async def get(self, contract_id: str, *, lock: bool = True) -> Contract | None: ...

    async def get_by_milestone(
        self, milestone_id: str, *, lock: bool = True
    ) -> Contract | None: ...

    async def get_by_dispute(self, dispute_id: str) -> tuple[Contract, Milestone] | None: ...

    def add(self, contract: Contract) -> None: ...


class Jobs(Protocol):
    """Where jobs are kept."""

    async def get(self, job_id: str) -> Job | None: ...

    def add(self, job: Job) -> None: ...

    async def has_open_contract(self, job_id: str, freelancer_id: str) -> bool: ...


class Marketplaces(Protocol):
    """Where marketplaces' settings versions are kept."""

    async def current(self, marketplace_id: str) -> tuple[int, MarketplaceSettings] | None: ...

    async def lock(self, marketplace_id: str) -> object | None: ...

    async def add_version(
        self, marketplace_id: str, version: int, settings: MarketplaceSettings, changed_by: str
    ) -> None: ...


#: A change recorded by a contract (milestone None) or one of its milestones.
Recorded = tuple[Contract, Milestone | None, Change]


class UnitOfWork(abc.ABC):
    """One transaction: the repositories, the clock, and commit."""

    contracts: Contracts
    jobs: Jobs
    marketplaces: Marketplaces

    def __init__(self) -> None:
        self._loose: list[Event] = []
        self.committed = False

    @abc.abstractmethod
    def now(self) -> datetime:
        """The time the use case happens at."""

    def publish(self, event: Event) -> None:
        """An event that belongs to no contract (a job posted, new settings)."""
        self._loose.append(event)

    def collect(self) -> list[Recorded]:
        """Every change the aggregates recorded, in the order they happened; cleared."""
        found: list[Recorded] = []
        for contract in self.contracts.seen.values():
            found.extend((contract, None, change) for change in contract.events)
            contract.events.clear()
            for milestone in contract.milestones:
                found.extend((contract, milestone, change) for change in milestone.events)
                milestone.events.clear()
        return sorted(found, key=lambda item: item[2].order)

    async def commit(self) -> None:
        """Write the aggregates, their changes and events; the transaction commits when the
        ``async with`` block ends."""
        loose, self._loose = self._loose, []
        await self._write(self.collect(), loose)
        self.committed = True

    @abc.abstractmethod
    async def _write(self, changes: list[Recorded], loose: list[Event]) -> None: ...

    async def __aenter__(self) -> UnitOfWork:
        self.committed = False
        self._loose = []
        return self

    @abc.abstractmethod
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
