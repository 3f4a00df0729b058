"""Reading and writing the directory, the branding and the email outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from cairn_chassis.db import locked
from cairn_schemas.base import WithParties
from cairn_schemas.events import DisputeResolved, MarketplaceSettingsChanged
from sqlalchemy import and_, func, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_notifications.adapters.tables import (
    ContractParties,
    EmailDelivery,
    MarketplaceBranding,
    ParkedEvent,
    Recipient,
)


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    return pg_insert if dialect == "postgresql" else sqlite_insert


async def record_parties(session: AsyncSession, event: WithParties, as_of: datetime) -> None:
    """Project a proposal/contract event into the directory (newer facts win)."""
    insert = _insert(session)
    values = {
        "contract_id": event.contract_id,
        "marketplace_id": event.marketplace_id,
        "job_id": event.job_id,
        "job_title": event.job_title,
        "customer_user_id": event.customer.user_id,
        "customer_email": event.customer.email,
        "customer_name": event.customer.name,
        "freelancer_user_id": event.freelancer.user_id,
        "freelancer_email": event.freelancer.email,
        "freelancer_name": event.freelancer.name,
        "as_of": as_of,
    }
    stmt = insert(ContractParties).values(**values)
    table = ContractParties.__table__  # type: ignore[attr-defined]
    await session.exec(
        stmt.on_conflict_do_update(
            index_elements=["contract_id"],
            set_={k: stmt.excluded[k] for k in values if k != "contract_id"},
            where=table.c.as_of <= stmt.excluded.as_of,
        )
    )
    for role, party in (("customer", event.customer), ("freelancer", event.freelancer)):
        person = {
            "marketplace_id": event.marketplace_id,
            "user_id": party.user_id,
            "role": role,
            "email": party.email,
            "name": party.name,
            "as_of": as_of,
        }
        rstmt = insert(Recipient).values(**person)
        rtable = Recipient.__table__  # type: ignore[attr-defined]
        await session.exec(
            rstmt.on_conflict_do_update(
                index_elements=["marketplace_id", "user_id"],
                set_={k: rstmt.excluded[k] for k in ("role", "email", "name", "as_of")},
                where=rtable.c.as_of <= rstmt.excluded.as_of,
            )
        )


async def record_branding(
    session: AsyncSession, event: MarketplaceSettingsChanged, now: datetime
) -> None:
    """Keep the newest settings version's branding of a marketplace."""
    b = event.settings.branding
    values = {
        "marketplace_id": event.marketplace_id,
        "settings_version": event.version,
        "display_name": b.display_name,
        "from_address": b.from_address,
        "support_address": b.support_address,
        "logo_url": b.logo_url,
        "accent_colour": b.accent_colour,
        "currency": event.settings.currency,
        "updated_at": now,
    }
    insert = _insert(session)
    stmt = insert(MarketplaceBranding).values(**values)
    table = MarketplaceBranding.__table__  # type: ignore[attr-defined]
    await session.exec(
        stmt.on_conflict_do_update(
            index_elements=["marketplace_id"],
            set_={k: stmt.excluded[k] for k in values if k != "marketplace_id"},
            where=table.c.settings_version < stmt.excluded.settings_version,
        )
    )


async def get_parties(session: AsyncSession, contract_id: str) -> ContractParties | None:
    """The parties of a contract, if a proposal/contract event named them."""
    return await session.get(ContractParties, contract_id)


async def get_branding(session: AsyncSession, marketplace_id: str) -> MarketplaceBranding | None:
    """A marketplace's branding, if its settings have arrived."""
    return await session.get(MarketplaceBranding, marketplace_id)


async def add_delivery(session: AsyncSession, delivery: EmailDelivery) -> bool:
    """Queue an email; False if this (event, recipient) already has one."""
    values = delivery.model_dump()
    stmt = (
        _insert(session)(EmailDelivery)
        .values(**values)
        # Any conflict means this (event, recipient) is queued already: the id is derived
        # from the pair (address case-insensitively), the unique key guards it again.
        .on_conflict_do_nothing()
    )
    result = await session.exec(stmt)
    return bool(result.rowcount)


async def claim_due(
    session: AsyncSession, now: datetime, *, limit: int, lease: timedelta, postgres: bool
) -> list[EmailDelivery]:
    """Take up to ``limit`` emails that are due (or whose sender vanished) for sending.

    Marks them ``sending`` with a lease and one more attempt; the caller commits before
    talking to the SMTP server, so the attempt is on record whatever happens next.
    """
    query = (
        select(EmailDelivery)
        .where(
            or_(
                and_(
                    col(EmailDelivery.status) == "pending",
                    col(EmailDelivery.next_attempt_at) <= now,
                ),
                and_(
                    col(EmailDelivery.status) == "sending",
                    col(EmailDelivery.lease_until) < now,
                ),
            )
        )
        .order_by(col(EmailDelivery.next_attempt_at))
        .limit(limit)
    )
    if postgres:
        query = query.with_for_update(skip_locked=True)
    rows = list((await session.exec(query)).all())
    for row in rows:
        row.status = "sending"
        row.attempts += 1
        row.lease_until = now + lease
        row.updated_at = now
        session.add(row)
    return rows


async def lock_delivery(session: AsyncSession, delivery_id: str) -> EmailDelivery | None:
    """The delivery row, locked for an update of its outcome."""
    query = locked(select(EmailDelivery).where(col(EmailDelivery.id) == delivery_id))
    return (await session.exec(query)).first()


async def list_deliveries(
    session: AsyncSession,
    marketplace_id: str,
    *,
    contract_id: str | None,
    statuses: Sequence[str],
    limit: int,
    offset: int = 0,
) -> list[EmailDelivery]:
    """A marketplace's deliveries, newest first."""
    query = select(EmailDelivery).where(col(EmailDelivery.marketplace_id) == marketplace_id)
    if contract_id is not None:
        query = query.where(col(EmailDelivery.contract_id) == contract_id)
    if statuses:
        query = query.where(col(EmailDelivery.status).in_(list(statuses)))
    query = (
        query.order_by(col(EmailDelivery.created_at).desc(), col(EmailDelivery.id))
        .offset(offset)
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """How many deliveries are in each status (for the metrics)."""
    result = await session.exec(
        select(EmailDelivery.status, func.count()).group_by(col(EmailDelivery.status))
    )
    return {str(status): int(n) for status, n in result.all()}


async def park(session: AsyncSession, row: ParkedEvent) -> None:
    """Keep an event until its contract's parties are known (idempotent by event id)."""
    stmt = (
        _insert(session)(ParkedEvent)
        .values(**row.model_dump())
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    await session.exec(stmt)


async def take_parked(session: AsyncSession, contract_id: str) -> list[ParkedEvent]:
    """Remove and return the events waiting for ``contract_id``'s parties, oldest first."""
    return await _take(
        session,
        col(ParkedEvent.waiting_for) == "contract",
        col(ParkedEvent.contract_id) == contract_id,
    )


async def take_parked_for_branding(session: AsyncSession, marketplace_id: str) -> list[ParkedEvent]:
    """Remove and return the events waiting for ``marketplace_id``'s branding."""
    return await _take(
        session,
        col(ParkedEvent.waiting_for) == "branding",
        col(ParkedEvent.marketplace_id) == marketplace_id,
    )


async def _take(session: AsyncSession, *where: Any) -> list[ParkedEvent]:
    rows = list(
        (
            await session.exec(
                select(ParkedEvent)
                .where(*where)
                .order_by(col(ParkedEvent.event_time), col(ParkedEvent.parked_at))
            )
        ).all()
    )
    for row in rows:
        await session.delete(row)
    # Delete now: an event taken here may be parked again (waiting for something else) in
    # the same transaction, and that insert must not meet this row.
    await session.flush()
    return rows


async def requeue_failed(
    session: AsyncSession,
    *,
    now: datetime,
    retry_until: datetime,
    marketplace_id: str | None = None,
    delivery_ids: Sequence[str] = (),
    failed_since: datetime | None = None,
) -> list[EmailDelivery]:
    """Put failed emails back in the queue with a new retry window; the ones re-queued.

    Narrowed by marketplace (an operator's own), ids and/or the time they failed; an email
    that is not ``failed`` is never touched (a delivered one is not sent again)."""
    query = select(EmailDelivery).where(col(EmailDelivery.status) == "failed")
    if marketplace_id is not None:
        query = query.where(col(EmailDelivery.marketplace_id) == marketplace_id)
    if delivery_ids:
        query = query.where(col(EmailDelivery.id).in_(list(delivery_ids)))
    if failed_since is not None:
        query = query.where(col(EmailDelivery.failed_at) >= failed_since)
    rows = list((await session.exec(query.with_for_update())).all())
    for row in rows:
        row.status = "pending"
        row.next_attempt_at = now
        row.retry_until = retry_until
        row.failed_at = None
        row.lease_until = None
        row.updated_at = now
        session.add(row)
    return rows


async def dispute_decided(session: AsyncSession, milestone_id: str) -> bool:
    """True if the parties were emailed a dispute decision about ``milestone_id``."""
    query = (
        select(EmailDelivery.id)
        .where(
            col(EmailDelivery.milestone_id) == milestone_id,
            col(EmailDelivery.source_event_type) == DisputeResolved.event_type,
        )
        .limit(1)
    )
    return (await session.exec(query)).first() is not None
