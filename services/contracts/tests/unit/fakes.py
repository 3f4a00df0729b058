"""A unit of work in memory (cosmicpython's FakeUnitOfWork), and small builders of the
world a use case starts from: no database, no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from cairn_contracts.domain.model import Caller, Contract, Milestone
from cairn_contracts.domain.records import Change, Dispute, Job, new_id
from cairn_contracts.domain.states import ActorRole
from cairn_contracts.service.unit_of_work import Recorded, UnitOfWork
from cairn_schemas.base import Event
from cairn_schemas.settings import MarketplaceSettings

MARKETPLACE = "mkt_fake"
CUSTOMER = Caller("cus_1", MARKETPLACE, "customer")
FREELANCER = Caller("fre_1", MARKETPLACE, "freelancer")
OPERATOR = Caller("op_1", MARKETPLACE, "operator")
SYSTEM = Caller("system", MARKETPLACE, "system")
PAYMENTS = Caller("payments", MARKETPLACE, "payments")
CALLERS: dict[ActorRole, Caller] = {
    "customer": CUSTOMER,
    "freelancer": FREELANCER,
    "operator": OPERATOR,
    "system": SYSTEM,
    "payments": PAYMENTS,
}
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def marketplace_settings(**options: Any) -> MarketplaceSettings:
    return MarketplaceSettings(
        currency="EUR",
        platform_fee_bps=1000,
        branding={
            "display_name": "Acme",
            "from_address": "hello@acme.test",
            "support_address": "help@acme.test",
        },
        **options,
    )


def a_contract(state: str = "live", **options: Any) -> Contract:
    return Contract(
        id=new_id("ct"),
        marketplace_id=MARKETPLACE,
        job_id="job_1",
        job_title="Logo",
        customer_id=CUSTOMER.user_id,
        customer_email="c@acme.test",
        customer_name="C",
        freelancer_id=FREELANCER.user_id,
        freelancer_email="f@acme.test",
        freelancer_name="F",
        freelancer_country=None,
        cover_letter="Hi",
        state=state,  # type: ignore[arg-type]
        settings_version=1,
        settings=marketplace_settings(**options),
        created_at=START,
        updated_at=START,
        started_at=START if state != "proposal" else None,
    )


def a_milestone(contract: Contract, state: str, **fields: Any) -> Milestone:
    """A milestone of ``contract`` already in ``state`` (as the repository loads one)."""
    fields.setdefault("funding_attempt", 1 if state not in ("draft", "pending_approval") else 0)
    milestone = Milestone(
        id=new_id("ms"),
        contract_id=contract.id,
        marketplace_id=contract.marketplace_id,
        title="Concepts",
        description="Three directions",
        amount=500_00,
        currency="EUR",
        state=state,
        version=3,
        creator_role=contract.workflow.creator,
        created_at=START,
        updated_at=START,
        **fields,
    )
    if state == "disputed" and milestone.dispute is None:
        milestone.dispute = Dispute(
            new_id("dp"), MARKETPLACE, contract.id, milestone.id, "Late", CUSTOMER.user_id, START
        )
        milestone.dispute_id = milestone.dispute.id
    milestone.contract = contract
    contract.milestones.append(milestone)
    return milestone


class FakeContracts:
    def __init__(self, contracts: list[Contract]) -> None:
        self.store = {c.id: c for c in contracts}
        self.seen: dict[str, Contract] = {}

    async def get(self, contract_id: str, *, lock: bool = True) -> Contract | None:
        contract = self.store.get(contract_id)
        if contract is not None:
            self.seen[contract.id] = contract
        return contract

    async def get_by_milestone(self, milestone_id: str, *, lock: bool = True) -> Contract | None:
        for contract in self.store.values():
            if any(m.id == milestone_id for m in contract.milestones):
                return await self.get(contract.id)
        return None

    async def get_by_dispute(self, dispute_id: str) -> tuple[Contract, Milestone] | None:
        for contract in self.store.values():
            for m in contract.milestones:
                if m.dispute is not None and m.dispute.id == dispute_id:
                    await self.get(contract.id)
                    return contract, m
        return None

    def add(self, contract: Contract) -> None:
        self.store[contract.id] = self.seen[contract.id] = contract


class FakeJobs:
    def __init__(self, jobs: list[Job]) -> None:
        self.store = {j.id: j for j in jobs}

    async def get(self, job_id: str) -> Job | None:
        return self.store.get(job_id)

    def add(self, job: Job) -> None:
        self.store[job.id] = job

    async def has_open_contract(self, job_id: str, freelancer_id: str) -> bool:
        return False


class FakeMarketplaces:
    def __init__(self, settings: MarketplaceSettings | None) -> None:
        self.versions: list[MarketplaceSettings] = [] if settings is None else [settings]

    async def current(self, marketplace_id: str) -> tuple[int, MarketplaceSettings] | None:
        return (len(self.versions), self.versions[-1]) if self.versions else None

    async def lock(self, marketplace_id: str) -> object | None:
        return None

    async def add_version(
        self, marketplace_id: str, version: int, settings: MarketplaceSettings, changed_by: str
    ) -> None:
        self.versions.append(settings)


class FakeUnitOfWork(UnitOfWork):
    """Keeps everything in memory; ``published`` and ``history`` are what commit wrote."""

    def __init__(
        self,
        *contracts: Contract,
        jobs: list[Job] | None = None,
        settings: MarketplaceSettings | None = None,
    ) -> None:
        super().__init__()
        self.contracts = FakeContracts(list(contracts))
        self.jobs = FakeJobs(jobs or [])
        self.marketplaces = FakeMarketplaces(settings)
        self.clock = START + timedelta(days=1)
        self.published: list[Event] = []
        self.history: list[Change] = []
        self.commits = 0

    def now(self) -> datetime:
        return self.clock

    async def _write(self, changes: list[Recorded], loose: list[Event]) -> None:
        self.published.extend(loose)
        for _contract, _milestone, change in changes:
            self.published.extend(change.published)
            if change.history:
                self.history.append(change)
        self.commits += 1

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.contracts.seen.clear()
