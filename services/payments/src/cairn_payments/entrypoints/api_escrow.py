"""Escrow and ledger routes: a milestone's escrow for its parties, the books for operators."""

from __future__ import annotations

from datetime import datetime

from cairn_chassis.auth import CurrentPrincipal, require_role
from cairn_chassis.errors import Problem
from fastapi import APIRouter, Query
from pydantic import BaseModel

from cairn_payments.adapters import repository as repo
from cairn_payments.domain.ledger import Accounts
from cairn_payments.entrypoints.deps import ContextDep
from cairn_payments.service import report

router = APIRouter(prefix="/v1", tags=["escrow"])


class EscrowPublic(BaseModel):
    """Where a milestone's money is."""

    milestone_id: str
    contract_id: str
    state: str
    frozen: bool
    amount: int
    currency: str
    charged: int
    held: int
    platform_fee: int
    transferred: int
    refunded: int
    chargeback: int
    chargeback_owed_by_freelancer: int
    chargeback_after_release: str
    attempt: int
    payment_intent_id: str | None
    charge_id: str | None
    transfer_id: str | None
    refund_id: str | None
    reconciling_operation: str | None
    ledger_balance: int
    last_error: str | None
    updated_at: datetime


class PostingPublic(BaseModel):
    account: str
    amount: int


class EntryPublic(BaseModel):
    """One balanced ledger entry."""

    key: str
    kind: str
    milestone_id: str
    currency: str
    created_at: datetime
    postings: list[PostingPublic]


class BalancePublic(BaseModel):
    account: str
    currency: str
    balance: int


class BalancesPublic(BaseModel):
    """Every account's balance in a marketplace; ``total`` is always 0."""

    marketplace_id: str
    total: int
    balances: list[BalancePublic]


@router.get("/escrow/{milestone_id}", summary="A milestone's escrow (its parties, operators)")
async def get_escrow(milestone_id: str, ctx: ContextDep, who: CurrentPrincipal) -> EscrowPublic:
    async with ctx.db.transaction() as session:
        row = await repo.get_escrow(session, milestone_id)
        visible = (
            row is not None
            and row.marketplace_id == who.marketplace_id
            and (who.role == "operator" or who.user_id in (row.customer_id, row.freelancer_id))
        )
        if row is None or not visible:
            raise Problem(404, "escrow.not_found", "No escrow for this milestone.")
        held = sum(
            b
            for account, _, b in await repo.balances(session, milestone_id=milestone_id)
            if account == Accounts.escrow(milestone_id)
        )
        return EscrowPublic(
            milestone_id=row.milestone_id,
            contract_id=row.contract_id,
            state=row.state,
            frozen=row.frozen,
            amount=row.amount,
            currency=row.currency,
            charged=row.charged,
            held=row.held,
            platform_fee=row.fee,
            transferred=row.transferred,
            refunded=row.refunded,
            chargeback=row.chargeback,
            chargeback_owed_by_freelancer=row.chargeback_owed_by_freelancer,
            chargeback_after_release=row.chargeback_after_release,
            attempt=row.attempt,
            payment_intent_id=row.payment_intent_id,
            charge_id=row.charge_id,
            transfer_id=row.transfer_id,
            refund_id=row.refund_id,
            reconciling_operation=row.operation if row.state == "reconciling" else None,
            ledger_balance=held,
            last_error=row.last_error,
            updated_at=row.updated_at,
        )


@router.get("/ledger/entries", summary="Ledger entries of the operator's marketplace")
async def ledger_entries(
    ctx: ContextDep,
    who: CurrentPrincipal,
    milestone_id: str | None = None,
    limit: int = Query(500, ge=1, le=5000),
) -> list[EntryPublic]:
    require_role(who, "operator")
    async with ctx.db.transaction() as session:
        found = await repo.entries(
            session, marketplace_id=who.marketplace_id, milestone_id=milestone_id, limit=limit
        )
    return [
        EntryPublic(
            key=e.key,
            kind=e.kind,
            milestone_id=e.milestone_id,
            currency=e.currency,
            created_at=e.created_at,
            postings=[PostingPublic(account=p.account, amount=p.amount) for p in postings],
        )
        for e, postings in found
    ]


@router.get("/ledger/balances", summary="Account balances of the operator's marketplace")
async def ledger_balances(ctx: ContextDep, who: CurrentPrincipal) -> BalancesPublic:
    require_role(who, "operator")
    async with ctx.db.transaction() as session:
        rows = await repo.balances(session, marketplace_id=who.marketplace_id)
    return BalancesPublic(
        marketplace_id=who.marketplace_id,
        total=sum(b for _, _, b in rows),
        balances=[BalancePublic(account=a, currency=c, balance=b) for a, c, b in rows],
    )


class ReportLinePublic(BaseModel):
    milestone_id: str
    currency: str
    ledger_charged: int
    stripe_charged: int | None
    ledger_refunded: int
    stripe_refunded: int | None
    ledger_transferred: int
    stripe_transferred: int | None
    ledger_net: int
    stripe_balance_net: int | None
    balance_transactions: list[str]
    problems: list[str]


class ReportPublic(BaseModel):
    """Ledger against Stripe for every charged escrow of the operator's marketplace."""

    marketplace_id: str
    ok: bool
    totals: dict[str, dict[str, int]]
    lines: list[ReportLinePublic]


@router.get(
    "/reconciliation/report",
    summary="Reconciliation report: ledger against Stripe, per marketplace (operators)",
)
async def reconciliation(ctx: ContextDep, who: CurrentPrincipal) -> ReportPublic:
    require_role(who, "operator")
    found = await report.reconciliation_report(ctx, who.marketplace_id)
    return ReportPublic(
        marketplace_id=found.marketplace_id,
        ok=found.ok,
        totals=found.totals(),
        lines=[ReportLinePublic(**vars(line)) for line in found.lines],
    )
