"""The notifications service's tables: the recipient directory, marketplace branding and
the email outbox (delivery log)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

DeliveryStatus = Literal["pending", "sending", "delivered", "failed"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("pending", "sending", "delivered", "failed")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _ts(*, nullable: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable)


class Recipient(SQLModel, table=True):
    """A person emails can go to, as the latest proposal/contract event described them."""

    __tablename__ = "recipients"

    marketplace_id: str = Field(primary_key=True, max_length=128)
    user_id: str = Field(primary_key=True, max_length=128)
    role: str = Field(max_length=16)
    email: str = Field(max_length=254)
    name: str = Field(sa_column=Column(Text, nullable=False))
    as_of: datetime = Field(sa_column=_ts())


class ContractParties(SQLModel, table=True):
    """Who is on a contract, and what the job is called (from proposal/contract events)."""

    __tablename__ = "contract_parties"

    contract_id: str = Field(primary_key=True, max_length=128)
    marketplace_id: str = Field(max_length=128, index=True)
    job_id: str = Field(max_length=128)
    job_title: str = Field(sa_column=Column(Text, nullable=False))
    customer_user_id: str = Field(max_length=128)
    customer_email: str = Field(max_length=254)
    customer_name: str = Field(sa_column=Column(Text, nullable=False))
    freelancer_user_id: str = Field(max_length=128)
    freelancer_email: str = Field(max_length=254)
    freelancer_name: str = Field(sa_column=Column(Text, nullable=False))
    as_of: datetime = Field(sa_column=_ts())


class MarketplaceBranding(SQLModel, table=True):
    """The latest branding of a marketplace (from the compacted settings topic)."""

    __tablename__ = "marketplace_branding"

    marketplace_id: str = Field(primary_key=True, max_length=128)
    settings_version: int
    display_name: str = Field(sa_column=Column(Text, nullable=False))
    from_address: str = Field(max_length=254)
    support_address: str = Field(max_length=254)
    logo_url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    accent_colour: str = Field(max_length=7)
    currency: str = Field(max_length=3)
    updated_at: datetime = Field(sa_column=_ts())


class EmailDelivery(SQLModel, table=True):
    """One email to one recipient about one event: rendered, then sent (DESIGN §5, §8).

    The unique (source event, recipient) key is what makes a redelivered event a no-op and
    an email never go out twice; ``message_id`` is derived from the same key.
    """

    __tablename__ = "email_deliveries"
    __table_args__ = (
        UniqueConstraint("source_event_id", "recipient_email", name="uq_delivery_event_recipient"),
        Index("ix_delivery_due", "status", "next_attempt_at"),
        Index("ix_delivery_marketplace_contract", "marketplace_id", "contract_id", "status"),
    )

    id: str = Field(primary_key=True, max_length=64)
    source_event_id: str = Field(max_length=128)
    source_event_type: str = Field(max_length=128)
    template: str = Field(max_length=128)
    marketplace_id: str = Field(max_length=128)
    contract_id: str | None = Field(default=None, max_length=128)
    milestone_id: str | None = Field(default=None, max_length=128)
    recipient_email: str = Field(max_length=254)
    recipient_name: str = Field(sa_column=Column(Text, nullable=False))
    recipient_user_id: str | None = Field(default=None, max_length=128)
    recipient_role: str = Field(max_length=16)
    from_address: str = Field(max_length=254)
    from_name: str = Field(sa_column=Column(Text, nullable=False))
    reply_to: str | None = Field(default=None, max_length=254)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    text_body: str = Field(sa_column=Column(Text, nullable=False))
    html_body: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str = Field(max_length=320)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    lease_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # When retries stop (null: created_at + the configured window); re-queueing renews it.
    retry_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    delivered_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    failed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # The trace context the email was queued in: its SMTP send continues that trace.
    traceparent: str | None = Field(default=None, max_length=128, nullable=True)


class ParkedEvent(SQLModel, table=True):
    """An event whose emails cannot be written yet: the directory does not know its
    contract (``waiting_for = "contract"``: the proposal is still on its way on another
    partition or topic) or its marketplace's branding (``"branding"``: the settings topic
    is behind). Its emails go out when what it waits for arrives."""

    __tablename__ = "parked_events"

    event_id: str = Field(primary_key=True, max_length=128)
    contract_id: str = Field(max_length=128, index=True)
    event_type: str = Field(max_length=128)
    event_time: datetime = Field(sa_column=_ts())
    payload: str = Field(sa_column=Column(Text, nullable=False))
    parked_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    waiting_for: str = Field(default="contract", max_length=16)
    marketplace_id: str | None = Field(default=None, max_length=128, index=True)
