"""Rows ↔ aggregates: the contracts, jobs and marketplace settings as the domain sees them.

A contract is read with its row locked (``SELECT … FOR UPDATE``) and every milestone it
holds; every command on a contract or one of its milestones takes that lock, so one
contract's changes are serialised (and its history ids grow in commit order, which the
live-updates stream relies on)."""

from __future__ import annotations

import dataclasses
from typing import Any

from cairn_chassis.db import locked
from cairn_schemas.settings import MarketplaceSettings
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_contracts.adapters.tables import (
    ContractRow,
    DisputeRow,
    JobRow,
    MarketplaceRow,
    MessageRow,
    MilestoneRow,
    SettingsVersionRow,
)
from cairn_contracts.domain.model import Contract, Milestone
from cairn_contracts.domain.records import Dispute, Job

_CONTRACT_FIELDS = [
    f.name
    for f in dataclasses.fields(Contract)
    if f.name not in ("milestones", "events", "new_messages", "settings")
]
_MILESTONE_FIELDS = [
    f.name for f in dataclasses.fields(Milestone) if f.name not in ("events", "dispute", "contract")
]
_DISPUTE_FIELDS = [f.name for f in dataclasses.fields(Dispute)]


def _copy(source: Any, target: SQLModel, names: list[str]) -> None:
    for name in names:
        setattr(target, name, getattr(source, name))


def contract_from_rows(row: ContractRow, milestone_rows: list[MilestoneRow]) -> Contract:
    """The aggregate from its rows (also used by the read side)."""
    values = {name: getattr(row, name) for name in _CONTRACT_FIELDS}
    milestones = [
        Milestone(**{name: getattr(row, name) for name in _MILESTONE_FIELDS})
        for row in milestone_rows
    ]
    settings = MarketplaceSettings.model_validate_json(row.settings)
    return Contract(**values, settings=settings, milestones=milestones)


class SqlContracts:
    """The contracts repository on the service's database."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.seen: dict[str, Contract] = {}
        self._rows: dict[str, ContractRow] = {}
        self._milestone_rows: dict[str, MilestoneRow] = {}
        self._dispute_rows: dict[str, DisputeRow] = {}

    async def get(self, contract_id: str, *, lock: bool = True) -> Contract | None:
        """The contract with its milestones (oldest first), its row locked for a command."""
        query = select(ContractRow).where(ContractRow.id == contract_id)
        row = (await self.session.exec(locked(query) if lock else query)).first()
        if row is None:
            return None
        milestone_rows = list(
            (
                await self.session.exec(
                    select(MilestoneRow)
                    .where(MilestoneRow.contract_id == contract_id)
                    .order_by(col(MilestoneRow.created_at), col(MilestoneRow.id))
                    # Refresh rows this session read before the contract's lock was taken.
                    .execution_options(populate_existing=True)
                )
            ).all()
        )
        contract = contract_from_rows(row, milestone_rows)
        self._rows[contract.id] = row
        self._milestone_rows.update({row.id: row for row in milestone_rows})
        self.seen[contract.id] = contract
        return contract

    async def get_by_milestone(self, milestone_id: str, *, lock: bool = True) -> Contract | None:
        """The contract that holds ``milestone_id``."""
        contract_id = (
            await self.session.exec(
                select(MilestoneRow.contract_id).where(MilestoneRow.id == milestone_id)
            )
        ).first()
        return None if contract_id is None else await self.get(contract_id, lock=lock)

    async def get_by_dispute(self, dispute_id: str) -> tuple[Contract, Milestone] | None:
        """The contract and milestone a dispute is about, the dispute loaded on it."""
        row = (
            await self.session.exec(select(DisputeRow).where(DisputeRow.id == dispute_id))
        ).first()
        if row is None:
            return None
        contract = await self.get(row.contract_id)
        if contract is None:
            return None
        milestone = contract.milestone(row.milestone_id)
        await self.session.refresh(row)  # as committed by whoever held the lock before us
        milestone.dispute = Dispute(**{name: getattr(row, name) for name in _DISPUTE_FIELDS})
        self._dispute_rows[row.id] = row
        return contract, milestone

    def add(self, contract: Contract) -> None:
        """A new contract (a proposal)."""
        self.seen[contract.id] = contract

    async def save(self) -> None:
        """Write every aggregate this repository handed out back to its rows."""
        for contract in self.seen.values():
            row = self._rows.get(contract.id)
            if row is None:
                row = self._rows[contract.id] = ContractRow(
                    settings=contract.settings.model_dump_json(),
                    **{name: getattr(contract, name) for name in _CONTRACT_FIELDS},
                )
            else:
                _copy(contract, row, _CONTRACT_FIELDS)
            self.session.add(row)
        await self.session.flush()  # contracts before what refers to them
        for contract in self.seen.values():
            self._save_milestones(contract)
            for message in contract.new_messages:
                self.session.add(MessageRow(**dataclasses.asdict(message)))
            contract.new_messages.clear()

    def _save_milestones(self, contract: Contract) -> None:
        for milestone in contract.milestones:
            row = self._milestone_rows.get(milestone.id)
            if row is None:
                row = self._milestone_rows[milestone.id] = MilestoneRow(
                    **{name: getattr(milestone, name) for name in _MILESTONE_FIELDS}
                )
            else:
                _copy(milestone, row, _MILESTONE_FIELDS)
            self.session.add(row)
            if (dispute := milestone.dispute) is not None:
                dispute_row = self._dispute_rows.get(dispute.id)
                if dispute_row is None:
                    dispute_row = self._dispute_rows[dispute.id] = DisputeRow(
                        **dataclasses.asdict(dispute)
                    )
                else:
                    _copy(dispute, dispute_row, _DISPUTE_FIELDS)
                self.session.add(dispute_row)


class SqlJobs:
    """The jobs customers posted."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, job_id: str) -> Job | None:
        """One job."""
        row = (await self.session.exec(select(JobRow).where(JobRow.id == job_id))).first()
        if row is None:
            return None
        return Job(**{f.name: getattr(row, f.name) for f in dataclasses.fields(Job)})

    def add(self, job: Job) -> None:
        """A new job."""
        self.session.add(JobRow(**dataclasses.asdict(job)))

    async def has_open_contract(self, job_id: str, freelancer_id: str) -> bool:
        """Whether the freelancer already has an open proposal or contract on the job."""
        found = await self.session.exec(
            select(ContractRow.id).where(
                ContractRow.job_id == job_id,
                ContractRow.freelancer_id == freelancer_id,
                col(ContractRow.state).in_(["proposal", "live"]),
            )
        )
        return found.first() is not None


class SqlMarketplaces:
    """Marketplaces and their versioned settings."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current(self, marketplace_id: str) -> tuple[int, MarketplaceSettings] | None:
        """The current settings version, if the marketplace was ever set up."""
        row = (
            await self.session.exec(
                select(SettingsVersionRow)
                .where(SettingsVersionRow.marketplace_id == marketplace_id)
                .order_by(col(SettingsVersionRow.version).desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        return row.version, MarketplaceSettings.model_validate_json(row.settings)

    async def lock(self, marketplace_id: str) -> MarketplaceRow | None:
        """The marketplace's row, locked while a new settings version is written."""
        query = locked(select(MarketplaceRow).where(MarketplaceRow.id == marketplace_id))
        return (await self.session.exec(query)).first()

    async def add_version(
        self, marketplace_id: str, version: int, settings: MarketplaceSettings, changed_by: str
    ) -> None:
        """Store ``settings`` as ``version`` (creating the marketplace at version 1)."""
        market = await self.lock(marketplace_id)
        if market is None:
            market = MarketplaceRow(id=marketplace_id, current_version=version)
        market.current_version = version
        self.session.add(market)
        await self.session.flush()
        self.session.add(
            SettingsVersionRow(
                marketplace_id=marketplace_id,
                version=version,
                settings=settings.model_dump_json(),
                changed_by=changed_by,
            )
        )
