"""What every use case needs: the database, the Stripe gateway and the settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cairn_chassis.db import Database
from cairn_chassis.outbox import add_event
from cairn_schemas.base import Event
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_payments.adapters import repository as repo
from cairn_payments.adapters.stripe_gateway import StripeGateway
from cairn_payments.adapters.tables import EscrowRow
from cairn_payments.config import Settings
from cairn_payments.domain.escrow import Escrow
from cairn_payments.domain.ledger import LedgerEntry

SOURCE = "/cairn/payments"
CONSUMER = "payments"
WEBHOOK_CONSUMER = "payments-stripe-webhooks"


@dataclass
class PaymentsContext:
    """The service's collaborators, built once per process."""

    settings: Settings
    db: Database
    gateway: StripeGateway


async def save(
    session: AsyncSession,
    row: EscrowRow,
    escrow: Escrow,
    entries: Sequence[LedgerEntry] = (),
    events: Sequence[Event] = (),
) -> None:
    """Persist the escrow, its new ledger entries and its outgoing events in one go."""
    escrow.check_invariants()
    repo.apply_to_row(escrow, row)
    session.add(row)
    await repo.record_entries(session, entries)
    for event in events:
        add_event(session, event, source=SOURCE)


async def remember(ctx: PaymentsContext, key: str, operation: str, milestone_id: str) -> bool:
    """Store a Stripe idempotency key in its own committed transaction, before the call;
    False if an earlier try had stored it (and may have made the call)."""
    async with ctx.db.transaction() as session:
        return await repo.remember_operation(session, key, operation, milestone_id)


def charge_key(milestone_id: str, attempt: int) -> str:
    """Idempotency key of a milestone's funding attempt."""
    return f"cairn:charge:{milestone_id}:{attempt}"


def movement_key(operation: str, milestone_id: str) -> str:
    """Idempotency key of a release / refund / split step of a milestone."""
    return f"cairn:{operation}:{milestone_id}"
