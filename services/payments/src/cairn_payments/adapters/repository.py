"""Reading and writing the payments tables inside a caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from cairn_chassis.db import locked
from cairn_chassis.outbox import utcnow
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_payments.adapters.tables import (
    EscrowRow,
    LedgerEntryRow,
    LedgerPostingRow,
    PaymentProfile,
    StripeOperation,
)
from cairn_payments.domain.escrow import Escrow
from cairn_payments.domain.ledger import LedgerEntry

_ESCROW_FIELDS = tuple(f.name for f in fields(Escrow))


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    return pg_insert if dialect == "postgresql" else sqlite_insert


def _is_postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


# ------------------------------------------------------------------- escrows
def to_domain(row: EscrowRow) -> Escrow:
    """The domain escrow of a row."""
    return Escrow(**{name: getattr(row, name) for name in _ESCROW_FIELDS})


def apply_to_row(escrow: Escrow, row: EscrowRow) -> None:
    """Copy the domain escrow's fields onto its row."""
    for name in _ESCROW_FIELDS:
        setattr(row, name, getattr(escrow, name))
    row.updated_at = utcnow()


async def lock_escrow(session: AsyncSession, milestone_id: str) -> EscrowRow | None:
    """The escrow row, locked for the rest of the transaction on PostgreSQL."""
    query = select(EscrowRow).where(EscrowRow.milestone_id == milestone_id)
    if _is_postgres(session):
        query = locked(query)
    return (await session.exec(query)).first()


async def get_escrow(session: AsyncSession, milestone_id: str) -> EscrowRow | None:
    """The escrow row without a lock."""
    return await session.get(EscrowRow, milestone_id)


async def escrow_by_payment_intent(session: AsyncSession, pi_id: str) -> EscrowRow | None:
    """The escrow charged by PaymentIntent ``pi_id``."""
    query = select(EscrowRow).where(EscrowRow.payment_intent_id == pi_id)
    return (await session.exec(query)).first()


async def escrow_by_charge(session: AsyncSession, charge_id: str) -> EscrowRow | None:
    """The escrow whose charge is ``charge_id``."""
    query = select(EscrowRow).where(EscrowRow.charge_id == charge_id)
    return (await session.exec(query)).first()


async def escrows_in_state(
    session: AsyncSession,
    state: str,
    *,
    marketplace_id: str | None = None,
    freelancer_id: str | None = None,
) -> Sequence[EscrowRow]:
    """Escrows in ``state``, optionally of one freelancer in one marketplace."""
    query = select(EscrowRow).where(EscrowRow.state == state)
    if marketplace_id is not None:
        query = query.where(EscrowRow.marketplace_id == marketplace_id)
    if freelancer_id is not None:
        query = query.where(EscrowRow.freelancer_id == freelancer_id)
    return (await session.exec(query.order_by(col(EscrowRow.updated_at)))).all()


# ------------------------------------------------------------------ profiles
async def get_profile(
    session: AsyncSession, marketplace_id: str, user_id: str, kind: str, *, lock: bool = False
) -> PaymentProfile | None:
    """The (marketplace, user) profile of ``kind`` (customer | freelancer)."""
    query = select(PaymentProfile).where(
        PaymentProfile.marketplace_id == marketplace_id,
        PaymentProfile.user_id == user_id,
        PaymentProfile.kind == kind,
    )
    if lock and _is_postgres(session):
        query = locked(query)
    return (await session.exec(query)).first()


async def ensure_profile(
    session: AsyncSession, marketplace_id: str, user_id: str, kind: str, email: str | None
) -> PaymentProfile:
    """The profile, created empty if missing, locked on PostgreSQL."""
    row = PaymentProfile(marketplace_id=marketplace_id, user_id=user_id, kind=kind, email=email)
    insert = (
        _insert(session)(PaymentProfile)
        .values(
            id=row.id,
            marketplace_id=marketplace_id,
            user_id=user_id,
            kind=kind,
            email=email,
            payouts_enabled=False,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        .on_conflict_do_nothing(index_elements=["marketplace_id", "user_id", "kind"])
    )
    await (await session.connection()).execute(insert)
    found = await get_profile(session, marketplace_id, user_id, kind, lock=True)
    assert found is not None
    return found


async def profile_by_account(session: AsyncSession, account_id: str) -> PaymentProfile | None:
    """The freelancer profile owning connected account ``account_id``."""
    query = select(PaymentProfile).where(PaymentProfile.stripe_account_id == account_id)
    return (await session.exec(query)).first()


async def profile_by_customer(session: AsyncSession, customer_id: str) -> PaymentProfile | None:
    """The customer profile owning Stripe Customer ``customer_id``."""
    query = select(PaymentProfile).where(PaymentProfile.stripe_customer_id == customer_id)
    return (await session.exec(query)).first()


# ---------------------------------------------------------------- operations
async def remember_operation(
    session: AsyncSession,
    key: str,
    operation: str,
    milestone_id: str | None,
    *,
    request: Mapping[str, Any] | None = None,
) -> bool:
    """Store an idempotency key before the Stripe call it protects (no-op if known); with
    the call's ``request`` when the reconciler has to be able to make it again. True if the
    key is new — False means an earlier try stored it and may have made the call."""
    now = utcnow()
    result = await (await session.connection()).execute(
        _insert(session)(StripeOperation)
        .values(
            idempotency_key=key,
            milestone_id=milestone_id,
            operation=operation,
            status="started",
            request=json.dumps(dict(request), sort_keys=True) if request is not None else None,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    return result.rowcount == 1  # unknown (-1) errs on the side of looking up first


async def finish_operation(
    session: AsyncSession,
    key: str,
    status: str,
    *,
    object_id: str | None = None,
    error: str | None = None,
) -> None:
    """Record what a stored operation came to."""
    op = await session.get(StripeOperation, key)
    if op is None:
        return
    op.status = status
    op.stripe_object_id = object_id or op.stripe_object_id
    op.error = error
    op.updated_at = utcnow()
    session.add(op)


async def owed_operations(
    session: AsyncSession, operation: str, *, started_before: datetime
) -> Sequence[StripeOperation]:
    """Operations owed by a commit (they carry their request) that never finished."""
    query = (
        select(StripeOperation)
        .where(StripeOperation.operation == operation)
        .where(StripeOperation.status == "started")
        .where(col(StripeOperation.request).is_not(None))
        .where(col(StripeOperation.updated_at) < started_before)
        .order_by(col(StripeOperation.created_at))
    )
    return (await session.exec(query)).all()


# -------------------------------------------------------------------- ledger
async def record_entries(session: AsyncSession, entries: Sequence[LedgerEntry]) -> int:
    """Write entries not yet recorded (by key); returns how many were new."""
    new = 0
    for entry in entries:
        result = await (await session.connection()).execute(
            _insert(session)(LedgerEntryRow)
            .values(
                key=entry.key,
                kind=entry.kind,
                marketplace_id=entry.marketplace_id,
                milestone_id=entry.milestone_id,
                currency=entry.currency,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(LedgerEntryRow.id)
        )
        entry_id = result.scalar_one_or_none()
        if entry_id is None:
            continue
        new += 1
        for posting in entry.postings:
            session.add(
                LedgerPostingRow(
                    entry_id=int(entry_id),
                    account=posting.account,
                    amount=posting.amount,
                    currency=entry.currency,
                    marketplace_id=entry.marketplace_id,
                    milestone_id=entry.milestone_id,
                )
            )
    await session.flush()
    return new


async def balances(
    session: AsyncSession, *, marketplace_id: str | None = None, milestone_id: str | None = None
) -> list[tuple[str, str, int]]:
    """(account, currency, balance) over the postings, optionally of one marketplace or
    one milestone."""
    query = select(
        LedgerPostingRow.account,
        LedgerPostingRow.currency,
        func.sum(LedgerPostingRow.amount),
    ).group_by(col(LedgerPostingRow.account), col(LedgerPostingRow.currency))
    if marketplace_id is not None:
        query = query.where(LedgerPostingRow.marketplace_id == marketplace_id)
    if milestone_id is not None:
        query = query.where(LedgerPostingRow.milestone_id == milestone_id)
    rows = (await session.exec(query.order_by(col(LedgerPostingRow.account)))).all()
    return [(str(a), str(c), int(s or 0)) for a, c, s in rows]


async def entries(
    session: AsyncSession,
    *,
    marketplace_id: str | None = None,
    milestone_id: str | None = None,
    limit: int = 500,
) -> list[tuple[LedgerEntryRow, list[LedgerPostingRow]]]:
    """Ledger entries with their postings, newest last."""
    query = select(LedgerEntryRow)
    if marketplace_id is not None:
        query = query.where(LedgerEntryRow.marketplace_id == marketplace_id)
    if milestone_id is not None:
        query = query.where(LedgerEntryRow.milestone_id == milestone_id)
    rows = (await session.exec(query.order_by(col(LedgerEntryRow.id)).limit(limit))).all()
    ids = [r.id for r in rows]
    postings: dict[int, list[LedgerPostingRow]] = {}
    if ids:
        found = await session.exec(
            select(LedgerPostingRow).where(col(LedgerPostingRow.entry_id).in_(ids))
        )
        for posting in found.all():
            postings.setdefault(posting.entry_id, []).append(posting)
    return [(row, postings.get(row.id or 0, [])) for row in rows]
