"""SQLModel tables of the payments service (and the chassis tables it shares)."""

from __future__ import annotations

import uuid
from datetime import datetime

from cairn_chassis.idempotency import IdempotentResponse
from cairn_chassis.inbox import InboxRecord
from cairn_chassis.outbox import OutboxMessage, utcnow
from sqlalchemy import BigInteger, Column, Index, Integer, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

__all__ = [
    "EscrowRow",
    "IdempotentResponse",
    "InboxRecord",
    "LedgerEntryRow",
    "LedgerPostingRow",
    "OutboxMessage",
    "PaymentProfile",
    "StripeEventRow",
    "StripeOperation",
    "metadata",
]


def _id() -> str:
    return str(uuid.uuid4())


def _bigint_pk() -> Column[int]:
    return Column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )


class PaymentProfile(SQLModel, table=True):
    """A user's Stripe identity in one marketplace: a Customer (customers) or a Custom
    connected account (freelancers)."""

    __tablename__ = "payment_profiles"
    __table_args__ = (UniqueConstraint("marketplace_id", "user_id", "kind"),)

    id: str = Field(default_factory=_id, primary_key=True, max_length=64)
    marketplace_id: str = Field(max_length=128, index=True)
    user_id: str = Field(max_length=128)
    kind: str = Field(max_length=16)  # customer | freelancer
    email: str | None = Field(default=None, max_length=254)
    stripe_customer_id: str | None = Field(default=None, max_length=64, index=True)
    default_payment_method_id: str | None = Field(default=None, max_length=64)
    stripe_account_id: str | None = Field(default=None, max_length=64, index=True)
    payouts_enabled: bool = False
    requirements_due: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class EscrowRow(SQLModel, table=True):
    """One milestone's escrow (mirrors :class:`cairn_payments.domain.escrow.Escrow`)."""

    __tablename__ = "escrows"
    __table_args__ = (
        Index("ix_escrows_state", "state"),
        Index("ix_escrows_freelancer_state", "marketplace_id", "freelancer_id", "state"),
    )

    milestone_id: str = Field(primary_key=True, max_length=128)
    marketplace_id: str = Field(max_length=128, index=True)
    contract_id: str = Field(max_length=128)
    customer_id: str = Field(max_length=128)
    freelancer_id: str = Field(max_length=128)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    state: str = Field(max_length=32)
    attempt: int = 1
    platform_fee_bps: int = 0
    payment_intent_id: str | None = Field(default=None, max_length=64, index=True)
    charge_id: str | None = Field(default=None, max_length=64, index=True)
    transfer_id: str | None = Field(default=None, max_length=64)
    reversal_id: str | None = Field(default=None, max_length=64)
    refund_id: str | None = Field(default=None, max_length=64)
    stripe_dispute_id: str | None = Field(default=None, max_length=64)
    split_dispute_id: str | None = Field(default=None, max_length=128)
    resume_state: str | None = Field(default=None, max_length=32)
    charged: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    held: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    fee: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    transferred: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    refunded: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    chargeback: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    chargeback_owed_by_freelancer: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, default=0)
    )
    frozen: bool = False
    operation: str | None = Field(default=None, max_length=16)
    split_to_freelancer: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, default=0)
    )
    split_to_customer: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, default=0)
    )
    chargeback_after_release: str = Field(default="freelancer", max_length=16)
    action_client_secret: str | None = Field(default=None, max_length=255)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class StripeOperation(SQLModel, table=True):
    """An idempotency key, stored before the Stripe call it protects (DESIGN §8)."""

    __tablename__ = "stripe_operations"
    __table_args__ = (
        # The reconciler's pass over owed calls (every few seconds) reads only these rows.
        Index(
            "ix_stripe_operations_owed",
            "updated_at",
            postgresql_where=text("status = 'started' AND request IS NOT NULL"),
            sqlite_where=text("status = 'started' AND request IS NOT NULL"),
        ),
    )

    idempotency_key: str = Field(primary_key=True, max_length=200)
    milestone_id: str | None = Field(default=None, max_length=128, index=True)
    operation: str = Field(max_length=32)
    status: str = Field(default="started", max_length=16)  # started|succeeded|failed|unknown
    stripe_object_id: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The call's parameters (JSON) when the call is owed by a commit and made after it
    # (a stale charge's refund): the reconciler repeats it with the same key if the process
    # died before it finished.
    request: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class LedgerEntryRow(SQLModel, table=True):
    """One balanced movement; ``key`` makes recording it twice impossible."""

    __tablename__ = "ledger_entries"

    id: int | None = Field(default=None, sa_column=_bigint_pk())
    key: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=16)
    marketplace_id: str = Field(max_length=128, index=True)
    milestone_id: str = Field(max_length=128, index=True)
    currency: str = Field(max_length=3)
    created_at: datetime = Field(default_factory=utcnow)


class LedgerPostingRow(SQLModel, table=True):
    """One line of a ledger entry."""

    __tablename__ = "ledger_postings"
    __table_args__ = (Index("ix_ledger_postings_account", "account", "currency"),)

    id: int | None = Field(default=None, sa_column=_bigint_pk())
    entry_id: int = Field(foreign_key="ledger_entries.id", index=True)
    account: str = Field(max_length=200)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    marketplace_id: str = Field(max_length=128, index=True)
    milestone_id: str = Field(max_length=128)


class StripeEventRow(SQLModel, table=True):
    """A verified Stripe webhook event, stored on receipt and processed by the worker."""

    __tablename__ = "stripe_events"
    __table_args__ = (Index("ix_stripe_events_unprocessed", "processed_at", "received_at"),)

    id: str = Field(primary_key=True, max_length=128)
    type: str = Field(max_length=128)
    account: str | None = Field(default=None, max_length=64)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = Field(default=None, nullable=True)
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


metadata = SQLModel.metadata
