"""Response bodies of the contracts API (``*Public``, as in payments and the FastAPI
template). Every contract and milestone carries ``actions``: what the calling user may do
now, read from the same workflow table the commands obey."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Self, TypeVar

from cairn_schemas.settings import MarketplaceSettings
from pydantic import BaseModel, ConfigDict, Field

from cairn_contracts.domain.model import Contract, Milestone
from cairn_contracts.domain.states import ActorRole

T = TypeVar("T")

ACTIONS = Field(
    description="The commands the calling user may take now (a front end offers exactly "
    "these; e.g. 'Add Task' when `add_milestone` is listed)"
)


class SettingsPublic(BaseModel):
    marketplace_id: str
    version: int
    settings: MarketplaceSettings


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    marketplace_id: str
    customer_id: str
    title: str
    description: str
    created_at: datetime


class MilestonePublic(BaseModel):
    id: str
    contract_id: str
    title: str
    description: str
    amount: int
    currency: str
    state: str
    version: int
    approved_version: int | None
    funding_attempt: int
    refund_requested: bool
    refund_respond_by: datetime | None
    payment_client_secret: str | None = Field(
        None,
        description="Set while the card needs the customer's action (SCA); "
        "shown to the customer only",
    )
    payment_failure_reason: str | None
    auto_release_at: datetime | None
    dispute_id: str | None
    chargeback_at: datetime | None = Field(
        None,
        description="Set when the customer's bank opened a chargeback: the money is frozen "
        "and release, refund and dispute commands answer 409 `milestone.chargeback_open`",
    )
    chargeback_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    actions: list[str] = ACTIONS

    @classmethod
    def of(cls, milestone: Milestone, *, viewer_role: ActorRole) -> MilestonePublic:
        return cls(
            id=milestone.id,
            contract_id=milestone.contract_id,
            title=milestone.title,
            description=milestone.description,
            amount=milestone.amount,
            currency=milestone.currency,
            state=milestone.state,
            version=milestone.version,
            approved_version=milestone.approved_version,
            funding_attempt=milestone.funding_attempt,
            refund_requested=milestone.refund_requested,
            refund_respond_by=milestone.refund_respond_by,
            payment_client_secret=milestone.client_secret if viewer_role == "customer" else None,
            payment_failure_reason=milestone.failure_reason,
            auto_release_at=milestone.auto_release_at,
            dispute_id=milestone.dispute_id,
            chargeback_at=milestone.chargeback_at,
            chargeback_reason=milestone.chargeback_reason,
            created_at=milestone.created_at,
            updated_at=milestone.updated_at,
            actions=milestone.actions(viewer_role),
        )


class PartyPublic(BaseModel):
    user_id: str
    name: str
    email: str


class ContractPublic(BaseModel):
    id: str
    marketplace_id: str
    job_id: str
    job_title: str
    state: str
    customer: PartyPublic
    freelancer: PartyPublic
    cover_letter: str
    settings_version: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    milestones: list[MilestonePublic] | None = None
    actions: list[str] = ACTIONS

    @classmethod
    def of(
        cls, contract: Contract, *, viewer_role: ActorRole, with_milestones: bool = False
    ) -> ContractPublic:
        return cls(
            id=contract.id,
            marketplace_id=contract.marketplace_id,
            job_id=contract.job_id,
            job_title=contract.job_title,
            state=contract.state,
            customer=PartyPublic(
                user_id=contract.customer_id,
                name=contract.customer_name,
                email=contract.customer_email,
            ),
            freelancer=PartyPublic(
                user_id=contract.freelancer_id,
                name=contract.freelancer_name,
                email=contract.freelancer_email,
            ),
            cover_letter=contract.cover_letter,
            settings_version=contract.settings_version,
            created_at=contract.created_at,
            started_at=contract.started_at,
            ended_at=contract.ended_at,
            milestones=[
                MilestonePublic.of(one, viewer_role=viewer_role) for one in contract.milestones
            ]
            if with_milestones
            else None,
            actions=contract.actions(viewer_role),
        )


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    next_offset: int | None

    @classmethod
    def of(cls, items: list[T], limit: int, offset: int) -> Page[T]:
        """A page of ``items``; ``next_offset`` is set when the page is full."""
        return cls(
            items=items,
            limit=limit,
            offset=offset,
            next_offset=offset + limit if len(items) == limit else None,
        )


class ContractHistoryPublic(BaseModel):
    """One transition of a contract (and, with ``version``, of a milestone)."""

    model_config = ConfigDict(from_attributes=True)

    command: str
    actor_id: str
    actor_role: str
    from_state: str | None
    to_state: str
    event_id: str | None
    at: datetime

    @classmethod
    def of(cls, h: Any) -> Self:
        return cls.model_validate(h)


class HistoryPublic(ContractHistoryPublic):
    """One transition of a milestone, with the milestone version it produced."""

    version: int


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    contract_id: str
    milestone_id: str | None
    author_id: str
    author_role: str
    body: str
    created_at: datetime


class DisputePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    contract_id: str
    milestone_id: str
    reason: str
    status: str
    outcome: str | None
    amount_to_freelancer: int | None
    amount_to_customer: int | None
    note: str | None
    created_at: datetime
    resolved_at: datetime | None


class MilestoneChangePublic(BaseModel):
    """A live update (``event: milestone``): what changed, and the milestone now."""

    change: HistoryPublic
    milestone: MilestonePublic


class ContractChangePublic(BaseModel):
    """A live update (``event: contract``): what changed, and the contract now."""

    change: ContractHistoryPublic
    contract: ContractPublic
