"""Request and response bodies of the contracts API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, Literal, Self, TypeVar

from cairn_schemas.settings import MarketplaceSettings
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cairn_contracts.adapters.tables import (
    ContractHistoryRow,
    ContractRow,
    DisputeRow,
    HistoryRow,
    MessageRow,
    MilestoneRow,
)

T = TypeVar("T")

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
Sentence = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
Money = Annotated[
    int,
    Field(ge=1, le=100_000_000_00, strict=True, description="Minor units (cents), never a float"),
]


class Strict(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


class SettingsOut(BaseModel):
    marketplace_id: str
    version: int
    settings: MarketplaceSettings


class JobIn(Strict):
    title: Title
    description: LongText = ""


class JobOut(BaseModel):
    id: str
    marketplace_id: str
    customer_id: str
    title: str
    description: str
    created_at: datetime


class ProposalIn(Strict):
    cover_letter: LongText = ""
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = Field(
        None, description="The freelancer's ISO country (US escrow may be held 2 years)"
    )


class ReasonIn(Strict):
    reason: Sentence | None = None


class MilestoneIn(Strict):
    title: Title
    description: LongText = ""
    amount: Money


class MilestonePatch(Strict):
    title: Title | None = None
    description: LongText | None = None
    amount: Money | None = None


class ApproveIn(Strict):
    version: int = Field(ge=1, description="The milestone version the freelancer reviewed")


class MessageIn(Strict):
    body: Sentence
    milestone_id: str | None = None


class ChangesIn(Strict):
    message: Sentence


class DisputeIn(Strict):
    reason: Sentence


class RefundAnswerIn(Strict):
    accept: bool
    message: Sentence | None = None


class ResolveIn(Strict):
    outcome: Literal["release", "refund", "split"]
    amount_to_freelancer: Money | None = Field(
        None, description="Split only: the freelancer's part; the rest is refunded"
    )
    note: Sentence


class MilestoneOut(BaseModel):
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

    @classmethod
    def of(cls, m: MilestoneRow, *, viewer_role: str) -> MilestoneOut:
        return cls(
            id=m.id,
            contract_id=m.contract_id,
            title=m.title,
            description=m.description,
            amount=m.amount,
            currency=m.currency,
            state=m.state,
            version=m.version,
            approved_version=m.approved_version,
            funding_attempt=m.funding_attempt,
            refund_requested=m.refund_requested,
            refund_respond_by=m.refund_respond_by,
            payment_client_secret=m.client_secret if viewer_role == "customer" else None,
            payment_failure_reason=m.failure_reason,
            auto_release_at=m.auto_release_at,
            dispute_id=m.dispute_id,
            chargeback_at=m.chargeback_at,
            chargeback_reason=m.chargeback_reason,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )


class PartyOut(BaseModel):
    user_id: str
    name: str
    email: str


class ContractOut(BaseModel):
    id: str
    marketplace_id: str
    job_id: str
    job_title: str
    state: str
    customer: PartyOut
    freelancer: PartyOut
    cover_letter: str
    settings_version: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    milestones: list[MilestoneOut] | None = None

    @classmethod
    def of(
        cls, c: ContractRow, milestones: list[MilestoneRow] | None = None, *, viewer_role: str = ""
    ) -> ContractOut:
        return cls(
            id=c.id,
            marketplace_id=c.marketplace_id,
            job_id=c.job_id,
            job_title=c.job_title,
            state=c.state,
            customer=PartyOut(user_id=c.customer_id, name=c.customer_name, email=c.customer_email),
            freelancer=PartyOut(
                user_id=c.freelancer_id, name=c.freelancer_name, email=c.freelancer_email
            ),
            cover_letter=c.cover_letter,
            settings_version=c.settings_version,
            created_at=c.created_at,
            started_at=c.started_at,
            ended_at=c.ended_at,
            milestones=None
            if milestones is None
            else [MilestoneOut.of(m, viewer_role=viewer_role) for m in milestones],
        )


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    next_offset: int | None


class ContractHistoryOut(BaseModel):
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
    def of(cls, h: ContractHistoryRow | HistoryRow) -> Self:
        return cls.model_validate(h)


class HistoryOut(ContractHistoryOut):
    """One transition of a milestone, with the milestone version it produced."""

    version: int


class MessageOut(BaseModel):
    id: str
    contract_id: str
    milestone_id: str | None
    author_id: str
    author_role: str
    body: str
    created_at: datetime

    @classmethod
    def of(cls, m: MessageRow) -> MessageOut:
        return cls(
            id=m.id,
            contract_id=m.contract_id,
            milestone_id=m.milestone_id,
            author_id=m.author_id,
            author_role=m.author_role,
            body=m.body,
            created_at=m.created_at,
        )


class DisputeOut(BaseModel):
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

    @classmethod
    def of(cls, d: DisputeRow) -> DisputeOut:
        return cls(
            id=d.id,
            contract_id=d.contract_id,
            milestone_id=d.milestone_id,
            reason=d.reason,
            status=d.status,
            outcome=d.outcome,
            amount_to_freelancer=d.amount_to_freelancer,
            amount_to_customer=d.amount_to_customer,
            note=d.note,
            created_at=d.created_at,
            resolved_at=d.resolved_at,
        )
