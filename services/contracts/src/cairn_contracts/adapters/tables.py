"""The contracts service's tables (SQLModel)."""

from __future__ import annotations

from datetime import datetime

from cairn_chassis.outbox import utcnow
from sqlalchemy import BigInteger, Column, Index, Integer, Text
from sqlmodel import Field, SQLModel


class MarketplaceRow(SQLModel, table=True):
    """A marketplace (tenant) and its current settings version."""

    __tablename__ = "marketplaces"

    id: str = Field(primary_key=True, max_length=64)
    current_version: int
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SettingsVersionRow(SQLModel, table=True):
    """One immutable version of a marketplace's settings (contracts pin one)."""

    __tablename__ = "marketplace_settings"

    marketplace_id: str = Field(primary_key=True, max_length=64, foreign_key="marketplaces.id")
    version: int = Field(primary_key=True)
    settings: str = Field(sa_column=Column(Text, nullable=False))
    changed_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class JobRow(SQLModel, table=True):
    """A job a customer posted."""

    __tablename__ = "jobs"

    id: str = Field(primary_key=True, max_length=64)
    marketplace_id: str = Field(index=True, max_length=64, foreign_key="marketplaces.id")
    customer_id: str = Field(max_length=128)
    customer_email: str = Field(max_length=254)
    customer_name: str = Field(max_length=200)
    title: str = Field(max_length=200)
    description: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ContractRow(SQLModel, table=True):
    """A proposal, and the contract it becomes."""

    __tablename__ = "contracts"

    id: str = Field(primary_key=True, max_length=64)
    marketplace_id: str = Field(index=True, max_length=64, foreign_key="marketplaces.id")
    job_id: str = Field(index=True, max_length=64, foreign_key="jobs.id")
    job_title: str = Field(max_length=200)
    customer_id: str = Field(index=True, max_length=128)
    customer_email: str = Field(max_length=254)
    customer_name: str = Field(max_length=200)
    freelancer_id: str = Field(index=True, max_length=128)
    freelancer_email: str = Field(max_length=254)
    freelancer_name: str = Field(max_length=200)
    freelancer_country: str | None = Field(default=None, max_length=2)
    cover_letter: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(max_length=16, index=True)
    settings_version: int
    settings: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None


class MilestoneRow(SQLModel, table=True):
    """A milestone (task) with its wage and where it is in the workflow."""

    __tablename__ = "milestones"

    id: str = Field(primary_key=True, max_length=64)
    contract_id: str = Field(index=True, max_length=64, foreign_key="contracts.id")
    marketplace_id: str = Field(index=True, max_length=64)
    title: str = Field(max_length=200)
    description: str = Field(sa_column=Column(Text, nullable=False))
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    state: str = Field(max_length=24, index=True)
    version: int = 1
    creator_role: str = Field(max_length=16)
    approved_version: int | None = None
    funding_attempt: int = 0
    payment_intent_id: str | None = Field(default=None, max_length=128)
    client_secret: str | None = Field(default=None, max_length=256)
    failure_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    refund_requested: bool = False
    refund_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    refund_respond_by: datetime | None = None
    funded_at: datetime | None = None
    submitted_at: datetime | None = None
    auto_release_at: datetime | None = None
    holding_limit_at: datetime | None = None
    # When each reminder went out (set in the same transaction as the reminder event, so a
    # reminder is sent once even with several timer replicas).
    auto_release_reminded_at: datetime | None = None
    refund_reminded_at: datetime | None = None
    holding_reminded_at: datetime | None = None
    dispute_id: str | None = Field(default=None, max_length=64)
    split_to_freelancer: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    # The customer's bank opened a chargeback on this milestone's payment: payments froze
    # the escrow, so no command may order money to move (DESIGN §4).
    chargeback_at: datetime | None = None
    chargeback_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class HistoryRow(SQLModel, table=True):
    """One transition of a milestone: who, from, to, when, and the event it published."""

    __tablename__ = "milestone_history"
    # A contract's live-updates stream reads by contract after a cursor (migration 0005).
    __table_args__ = (Index("ix_milestone_history_contract_id_id", "contract_id", "id"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    milestone_id: str = Field(index=True, max_length=64)
    contract_id: str = Field(max_length=64)
    command: str = Field(max_length=40)
    actor_id: str = Field(max_length=128)
    actor_role: str = Field(max_length=16)
    from_state: str | None = Field(default=None, max_length=24)
    to_state: str = Field(max_length=24)
    version: int
    event_id: str | None = Field(default=None, max_length=64)
    at: datetime = Field(default_factory=utcnow)


class ContractHistoryRow(SQLModel, table=True):
    """One transition of a contract (proposal, live, declined, withdrawn, ended): who,
    from, to, when, and the event it published."""

    __tablename__ = "contract_history"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    contract_id: str = Field(index=True, max_length=64)
    command: str = Field(max_length=40)
    actor_id: str = Field(max_length=128)
    actor_role: str = Field(max_length=16)
    from_state: str | None = Field(default=None, max_length=24)
    to_state: str = Field(max_length=24)
    event_id: str | None = Field(default=None, max_length=64)
    at: datetime = Field(default_factory=utcnow)


class MessageRow(SQLModel, table=True):
    """A message in a contract's thread."""

    __tablename__ = "messages"

    id: str = Field(primary_key=True, max_length=64)
    contract_id: str = Field(index=True, max_length=64, foreign_key="contracts.id")
    milestone_id: str | None = Field(default=None, max_length=64)
    author_id: str = Field(max_length=128)
    author_role: str = Field(max_length=16)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class DisputeRow(SQLModel, table=True):
    """A dispute over a milestone, and its resolution."""

    __tablename__ = "disputes"

    id: str = Field(primary_key=True, max_length=64)
    marketplace_id: str = Field(index=True, max_length=64)
    contract_id: str = Field(max_length=64)
    milestone_id: str = Field(index=True, max_length=64)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    opened_by: str = Field(max_length=128)
    status: str = Field(default="open", max_length=16)
    outcome: str | None = Field(default=None, max_length=16)
    amount_to_freelancer: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    amount_to_customer: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    resolved_by: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None
