"""The reconciliation report: what the ledger says each escrow did, against what Stripe
holds for it (the charge, its refunds, the transfer and its reversals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import stripe
from sqlmodel import col, select

from cairn_payments.adapters.tables import EscrowRow
from cairn_payments.service.context import PaymentsContext


@dataclass
class Line:
    """One escrow compared with Stripe."""

    milestone_id: str
    currency: str
    ledger_charged: int
    stripe_charged: int | None
    ledger_refunded: int
    stripe_refunded: int | None
    ledger_transferred: int
    stripe_transferred: int | None
    problems: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Per-marketplace reconciliation: ``ok`` when every line matches."""

    marketplace_id: str
    lines: list[Line]

    @property
    def ok(self) -> bool:
        return all(not line.problems for line in self.lines)


def _field(obj: Any, name: str) -> int:
    try:
        return int(obj[name] or 0)
    except (KeyError, TypeError):
        return int(getattr(obj, name, 0) or 0)


async def reconciliation_report(ctx: PaymentsContext, marketplace_id: str) -> Report:
    """Compare every charged escrow of the marketplace with Stripe."""
    async with ctx.db.transaction() as session:
        rows = (
            await session.exec(
                select(EscrowRow)
                .where(EscrowRow.marketplace_id == marketplace_id)
                .where(col(EscrowRow.charge_id).is_not(None))
                .order_by(col(EscrowRow.created_at))
            )
        ).all()
    client = ctx.gateway.client
    lines = []
    for row in rows:
        line = Line(
            milestone_id=row.milestone_id,
            currency=row.currency,
            ledger_charged=row.charged,
            stripe_charged=None,
            ledger_refunded=row.refunded,
            stripe_refunded=None,
            ledger_transferred=row.transferred,
            stripe_transferred=None,
        )
        try:
            assert row.charge_id is not None
            charge = await client.v1.charges.retrieve_async(row.charge_id)
            line.stripe_charged = _field(charge, "amount")
            line.stripe_refunded = _field(charge, "amount_refunded")
            if row.transfer_id and not row.transfer_id.startswith("no_transfer"):
                transfer = await client.v1.transfers.retrieve_async(row.transfer_id)
                line.stripe_transferred = _field(transfer, "amount") - _field(
                    transfer, "amount_reversed"
                )
            else:
                line.stripe_transferred = 0
        except stripe.StripeError as exc:
            line.problems.append(f"could not read Stripe: {exc}")
            lines.append(line)
            continue
        for what, ours, theirs in (
            ("charged", line.ledger_charged, line.stripe_charged),
            ("refunded", line.ledger_refunded, line.stripe_refunded),
            ("transferred", line.ledger_transferred, line.stripe_transferred),
        ):
            if ours != theirs:
                line.problems.append(f"{what}: ledger {ours}, Stripe {theirs}")
        if row.state == "reconciling":
            line.problems.append(f"{row.operation} outcome still being reconciled")
        lines.append(line)
    return Report(marketplace_id=marketplace_id, lines=lines)
