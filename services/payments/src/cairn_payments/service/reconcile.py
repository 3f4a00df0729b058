"""The reconciler: settles escrows whose Stripe call had an unknown outcome, by looking
the object up (PaymentIntent by customer + metadata, transfer by transfer group +
metadata, refund by charge + metadata) before anything is created again; and carries out
releases that waited for a freelancer whose account became ready while no webhook came.

A release waits for ``account.updated``; a webhook can be lost (the API was down when it
came, and a stand-in or a misconfigured endpoint does not retry), so the reconciler also
asks Stripe itself, at most every ``account_recheck_interval_s`` per account, whether a
waiting freelancer's account can receive payouts now (found by the chaos run: releases
waited forever after their webhook was lost).

It also makes the refunds owed by a commit whose process died before the call (a stale
PaymentIntent's charge goes back to the customer: the webhook that found it committed, the
refund comes after — found in review: the customer stayed charged twice)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from cairn_chassis.logging import get_logger
from cairn_chassis.metrics import worker_only
from cairn_chassis.outbox import utcnow
from prometheus_client import Gauge
from sqlalchemy import and_
from sqlmodel import col, select

from cairn_payments.adapters import repository as repo
from cairn_payments.adapters.stripe_gateway import StripeGatewayError, StripeRefused
from cairn_payments.adapters.tables import EscrowRow, PaymentProfile
from cairn_payments.service import movements, steps
from cairn_payments.service.context import PaymentsContext, charge_key, remember

log = get_logger(__name__)

ESCROWS_RECONCILING = Gauge(
    "cairn_payments_escrows_reconciling", "Escrows whose last Stripe call has an unknown outcome"
)
ESCROWS_WAITING_FOR_PAYOUTS = Gauge(
    "cairn_payments_escrows_release_pending", "Releases waiting for the freelancer's payouts"
)
worker_only(ESCROWS_RECONCILING, ESCROWS_WAITING_FOR_PAYOUTS)


async def settle(ctx: PaymentsContext, milestone_id: str) -> str | None:
    """Settle one reconciling escrow; returns its state afterwards (None if not found)."""
    async with ctx.db.transaction() as session:
        row = await repo.get_escrow(session, milestone_id)
        if row is None or row.state != "reconciling" or row.operation is None:
            return row.state if row else None
        operation, attempt = row.operation, row.attempt
    if operation == "charge":
        await remember(ctx, charge_key(milestone_id, attempt), "charge", milestone_id)
    else:
        await steps.remember_steps(ctx, operation, milestone_id)
    async with ctx.db.transaction() as session:
        row = await repo.lock_escrow(session, milestone_id)
        if row is None or row.state != "reconciling":
            return row.state if row else None
        escrow = repo.to_domain(row)
        escrow.resume()
        await movements.drive(ctx, session, row, escrow, lookup_first=True, reconciling=True)
        log.info("reconcile.settled", milestone_id=milestone_id, state=row.state)
        return row.state


_last_account_check: dict[str, float] = {}


async def recheck_waiting_accounts(ctx: PaymentsContext) -> int:
    """Ask Stripe about the accounts that releases wait for and our books still call not
    ready; mark those that are. Returns how many became ready."""
    async with ctx.db.transaction() as session:
        accounts = (
            await session.exec(
                select(PaymentProfile.stripe_account_id)
                .join(
                    EscrowRow,
                    and_(
                        col(PaymentProfile.marketplace_id) == col(EscrowRow.marketplace_id),
                        col(PaymentProfile.user_id) == col(EscrowRow.freelancer_id),
                    ),
                )
                .where(
                    EscrowRow.state == "release_pending",
                    col(EscrowRow.frozen).is_(False),
                    col(PaymentProfile.kind) == "freelancer",
                    col(PaymentProfile.payouts_enabled).is_(False),
                    col(PaymentProfile.stripe_account_id).is_not(None),
                )
                .distinct()
            )
        ).all()
    now = time.monotonic()
    ready = 0
    for account_id in accounts:
        if account_id is None:
            continue
        if now - _last_account_check.get(account_id, -1e9) < (
            ctx.settings.account_recheck_interval_s
        ):
            continue
        _last_account_check[account_id] = now
        try:
            enabled = await ctx.gateway.payouts_enabled(account_id)
        except StripeGatewayError as exc:
            log.warning("reconcile.account_lookup_failed", account=account_id, error=exc.message)
            continue
        if not enabled:
            continue
        async with ctx.db.transaction() as session:
            profile = await repo.profile_by_account(session, account_id)
            if profile is not None and not profile.payouts_enabled:
                profile.payouts_enabled = True
                profile.updated_at = utcnow()
                session.add(profile)
                ready += 1
                log.warning("reconcile.account_ready_without_webhook", account=account_id)
    return ready


async def carry_out_refund(
    ctx: PaymentsContext, key: str, request: dict[str, Any], *, lookup_first: bool = False
) -> str | None:
    """Make an owed refund (stored with its request under ``key``) and record what it came
    to; returns the refund id (None if Stripe refused it). An unknown outcome raises and
    leaves the operation owed: the next pass looks it up, then makes it with the same key."""
    try:
        refund_id = await steps.refund_once(
            ctx,
            charge_id=str(request["charge_id"]),
            amount=int(request["amount"]),
            metadata=dict(request["metadata"]),
            key=key,
            lookup_first=lookup_first,
        )
    except StripeRefused as exc:
        # Final (e.g. the charge was refunded from the dashboard already): operators see it.
        log.error("refund.owed_refused", key=key, error=exc.message, code=exc.code)
        async with ctx.db.transaction() as session:
            await repo.finish_operation(session, key, "failed", error=exc.message)
        return None
    async with ctx.db.transaction() as session:
        await repo.finish_operation(session, key, "succeeded", object_id=refund_id)
    return refund_id


async def finish_owed_refunds(ctx: PaymentsContext) -> int:
    """Make the stale charges' refunds whose process died before making them."""
    async with ctx.db.transaction() as session:
        owed = [
            (op.idempotency_key, op.request or "{}")
            for op in await repo.owed_operations(
                session,
                "stale-refund",
                started_before=utcnow() - timedelta(seconds=ctx.settings.owed_call_grace_s),
            )
        ]
    done = 0
    for key, request in owed:
        try:
            refund_id = await carry_out_refund(ctx, key, json.loads(request), lookup_first=True)
        except Exception as exc:  # the next pass tries again
            log.warning("reconcile.owed_refund_failed", key=key, error=repr(exc))
            continue
        if refund_id is None:
            continue  # refused: recorded and logged for operators
        log.warning("reconcile.owed_refund_made", key=key)
        done += 1
    return done


async def sweep(ctx: PaymentsContext) -> int:
    """One pass: settle every reconciling escrow, resume releases whose freelancer is ready.
    Returns how many escrows left reconciling or release_pending."""
    try:
        await recheck_waiting_accounts(ctx)
    except Exception as exc:  # the rest of the pass does not depend on it
        log.warning("reconcile.account_recheck_failed", error=repr(exc))
    try:
        await finish_owed_refunds(ctx)
    except Exception as exc:
        log.warning("reconcile.owed_refunds_failed", error=repr(exc))
    async with ctx.db.transaction() as session:
        reconciling = [r.milestone_id for r in await repo.escrows_in_state(session, "reconciling")]
        ready = (
            await session.exec(
                select(EscrowRow.marketplace_id, EscrowRow.freelancer_id)
                .join(
                    PaymentProfile,
                    and_(
                        col(PaymentProfile.marketplace_id) == col(EscrowRow.marketplace_id),
                        col(PaymentProfile.user_id) == col(EscrowRow.freelancer_id),
                        col(PaymentProfile.kind) == "freelancer",
                    ),
                )
                .where(
                    EscrowRow.state == "release_pending",
                    col(EscrowRow.frozen).is_(False),
                    PaymentProfile.payouts_enabled,
                )
                .distinct()
            )
        ).all()
        waiting = await repo.escrows_in_state(session, "release_pending")
    ESCROWS_RECONCILING.set(len(reconciling))
    ESCROWS_WAITING_FOR_PAYOUTS.set(len(waiting))
    moved = 0
    for milestone_id in reconciling:
        try:
            state = await settle(ctx, milestone_id)
        except Exception as exc:
            log.warning("reconcile.failed", milestone_id=milestone_id, error=repr(exc))
            continue
        moved += state not in (None, "reconciling")
    for marketplace_id, freelancer_id in ready:
        moved += await movements.resume_waiting_releases(ctx, marketplace_id, freelancer_id)
    return moved
