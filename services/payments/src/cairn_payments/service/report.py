"""The reconciliation report: for each escrow of a marketplace, what the ledger says went
through the platform's Stripe balance against Stripe's balance transactions (the charge,
its refunds, the transfer and its reversals), plus the objects' own amounts."""

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
    # Net effect on the platform's balance: charge - refunds - transfers + reversals.
    ledger_net: int
    stripe_balance_net: int | None
    balance_transactions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Per-marketplace reconciliation: ``ok`` when every line matches."""

    marketplace_id: str
    lines: list[Line]

    @property
    def ok(self) -> bool:
        return all(not line.problems for line in self.lines)

    def totals(self) -> dict[str, dict[str, int]]:
        """Per currency: the ledger's and Stripe's net, summed over the lines."""
        out: dict[str, dict[str, int]] = {}
        for line in self.lines:
            t = out.setdefault(line.currency, {"ledger_net": 0, "stripe_balance_net": 0})
            t["ledger_net"] += line.ledger_net
            t["stripe_balance_net"] += line.stripe_balance_net or 0
        return out


def _field(obj: Any, name: str) -> Any:
    try:
        return obj[name]
    except (KeyError, TypeError):
        return getattr(obj, name, None)


def _int(obj: Any, name: str) -> int:
    return int(_field(obj, name) or 0)


class _Balance:
    """Collects the balance transactions behind one escrow's Stripe objects."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client
        self.ids: list[str] = []
        self.net = 0
        self.missing = 0

    async def add(self, obj: Any, *, sign_if_missing: int, amount_if_missing: int) -> None:
        bt = _field(obj, "balance_transaction")
        bt_id = bt if isinstance(bt, str) else _field(bt, "id")
        if not bt_id:
            # localstripe books no balance transaction for transfers; count the object.
            self.missing += 1
            self.net += sign_if_missing * amount_if_missing
            return
        txn = await self.client.v1.balance_transactions.retrieve_async(str(bt_id))
        self.ids.append(str(bt_id))
        self.net += _int(txn, "amount")


async def _line(client: stripe.StripeClient, row: EscrowRow) -> Line:
    line = Line(
        milestone_id=row.milestone_id,
        currency=row.currency,
        ledger_charged=row.charged,
        stripe_charged=None,
        ledger_refunded=row.refunded,
        stripe_refunded=None,
        ledger_transferred=row.transferred,
        stripe_transferred=None,
        ledger_net=row.charged - row.refunded - row.transferred,
        stripe_balance_net=None,
    )
    assert row.charge_id is not None
    balance = _Balance(client)
    charge = await client.v1.charges.retrieve_async(row.charge_id)
    line.stripe_charged = _int(charge, "amount")
    line.stripe_refunded = _int(charge, "amount_refunded")
    await balance.add(charge, sign_if_missing=1, amount_if_missing=line.stripe_charged)
    refunds = await client.v1.refunds.list_async({"charge": row.charge_id, "limit": 100})
    for refund in refunds.data:
        if _field(refund, "charge") == row.charge_id:
            await balance.add(refund, sign_if_missing=-1, amount_if_missing=_int(refund, "amount"))
    line.stripe_transferred = 0
    if row.transfer_id and not row.transfer_id.startswith("no_transfer"):
        transfer = await client.v1.transfers.retrieve_async(row.transfer_id)
        line.stripe_transferred = _int(transfer, "amount") - _int(transfer, "amount_reversed")
        await balance.add(transfer, sign_if_missing=-1, amount_if_missing=_int(transfer, "amount"))
        reversals = await client.v1.transfers.reversals.list_async(row.transfer_id, {"limit": 100})
        for reversal in reversals.data:
            await balance.add(
                reversal, sign_if_missing=1, amount_if_missing=_int(reversal, "amount")
            )
    line.stripe_balance_net = balance.net
    line.balance_transactions = balance.ids
    return line


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
    lines = []
    for row in rows:
        try:
            line = await _line(ctx.gateway.client, row)
        except stripe.StripeError as exc:
            line = Line(
                row.milestone_id,
                row.currency,
                row.charged,
                None,
                row.refunded,
                None,
                row.transferred,
                None,
                row.charged - row.refunded - row.transferred,
                None,
            )
            line.problems.append(f"could not read Stripe: {exc.user_message or exc}")
            lines.append(line)
            continue
        for what, ours, theirs in (
            ("charged", line.ledger_charged, line.stripe_charged),
            ("refunded", line.ledger_refunded, line.stripe_refunded),
            ("transferred", line.ledger_transferred, line.stripe_transferred),
            ("balance", line.ledger_net, line.stripe_balance_net),
        ):
            if ours != theirs:
                line.problems.append(f"{what}: ledger {ours}, Stripe {theirs}")
        if row.state == "reconciling":
            line.problems.append(f"{row.operation} outcome still being reconciled")
        if row.chargeback:
            line.problems.append(f"chargeback of {row.chargeback} to settle with Stripe")
        lines.append(line)
    return Report(marketplace_id=marketplace_id, lines=lines)
