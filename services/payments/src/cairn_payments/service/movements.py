"""Release, refund and split of a funded escrow (DESIGN §4).

Each movement is one or two Stripe calls with idempotency keys derived from (milestone,
step), stored before the call. ``drive`` carries the escrow's current movement as far as
it can go; when reconciling it looks each object up before creating anything.
"""

from __future__ import annotations

from typing import Any

from cairn_chassis.logging import get_logger
from cairn_chassis.messaging import EventRouter, handle_once
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import (
    MilestoneRefundOrdered,
    MilestoneReleaseRequested,
    MilestoneSplitOrdered,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_payments.adapters import repository as repo
from cairn_payments.adapters.stripe_gateway import (
    StripeRefused,
    StripeUnknownOutcome,
)
from cairn_payments.adapters.tables import EscrowRow
from cairn_payments.domain.errors import EscrowRuleBroken
from cairn_payments.domain.escrow import Escrow, Operation
from cairn_payments.service import funding, steps
from cairn_payments.service.context import (
    CONSUMER,
    PaymentsContext,
    save,
)

log = get_logger(__name__)


async def drive(
    ctx: PaymentsContext,
    session: AsyncSession,
    row: EscrowRow,
    escrow: Escrow,
    *,
    lookup_first: bool,
    reconciling: bool = False,
) -> None:
    """Carry ``escrow.operation`` as far as it goes; an unknown outcome → reconciling
    (announced unless ``reconciling``: the reconciler's own retry)."""
    operation: Operation | None = escrow.operation
    if operation is None:
        return
    if operation == "charge":
        await funding.charge_now(
            ctx,
            session,
            row,
            escrow,
            payment_method_id=None,
            lookup_first=lookup_first,
            reconciling=reconciling,
        )
        return
    progress = steps.Progress()
    try:
        await steps.STEPS[operation](ctx, session, row, escrow, lookup_first, progress)
    except StripeUnknownOutcome as exc:
        news = not reconciling
        escrow.to_reconciling(operation)
        row.last_error = exc.message
        if news:
            progress.events.append(
                funding.reconciling_event(escrow, f"The {operation}'s outcome is being confirmed.")
            )
        await save(session, row, escrow, progress.entries, progress.events)
    except EscrowRuleBroken as exc:
        # The escrow changed under the movement (e.g. frozen by a chargeback): nothing moves.
        log.error(
            "movement.refused_by_escrow",
            milestone_id=escrow.milestone_id,
            operation=operation,
            reason=str(exc),
        )
    except StripeRefused as exc:
        # Stripe did nothing (e.g. an over-refund it refused): keep what was done, show why.
        log.error(
            "movement.refused",
            milestone_id=escrow.milestone_id,
            operation=operation,
            error=exc.message,
        )
        row.last_error = exc.message
        await save(session, row, escrow, progress.entries, progress.events)


async def _start(
    ctx: PaymentsContext,
    envelope: Envelope[Any],
    operation: Operation,
    prepare: Any,
) -> bool:
    milestone_id: str = envelope.event.milestone_id
    tried_before = await steps.remember_steps(ctx, operation, milestone_id)

    async def effect(session: AsyncSession) -> None:
        row = await repo.lock_escrow(session, milestone_id)
        if row is None:
            log.warning("movement.no_escrow", milestone_id=milestone_id, operation=operation)
            return
        escrow = repo.to_domain(row)
        try:
            prepare(escrow)
        except EscrowRuleBroken as exc:
            log.warning(
                "movement.refused_by_escrow",
                milestone_id=milestone_id,
                operation=operation,
                state=escrow.state,
                reason=str(exc),
            )
            return
        escrow.operation = operation
        await drive(ctx, session, row, escrow, lookup_first=tried_before)

    return await handle_once(ctx.db, CONSUMER, envelope, effect)


async def release_milestone(
    ctx: PaymentsContext, envelope: Envelope[MilestoneReleaseRequested]
) -> bool:
    """Transfer the held money less the platform fee to the freelancer (or wait for them)."""
    ev = envelope.event

    def prepare(escrow: Escrow) -> None:
        escrow.release_parts(ev.platform_fee_bps)
        escrow.platform_fee_bps = ev.platform_fee_bps

    return await _start(ctx, envelope, "release", prepare)


async def refund_milestone(
    ctx: PaymentsContext, envelope: Envelope[MilestoneRefundOrdered]
) -> bool:
    """Give the whole amount back to the customer (reversing a transfer first if needed)."""

    def prepare(escrow: Escrow) -> None:
        escrow.refund_parts()
        if escrow.state == "release_pending":
            escrow.state = "funded"

    return await _start(ctx, envelope, "refund", prepare)


async def split_milestone(ctx: PaymentsContext, envelope: Envelope[MilestoneSplitOrdered]) -> bool:
    """Transfer the freelancer's part (less the fee) and refund the customer's part."""
    ev = envelope.event

    def prepare(escrow: Escrow) -> None:
        escrow.split_parts(ev.amount_to_freelancer, ev.amount_to_customer, ev.platform_fee_bps)
        escrow.split_dispute_id = ev.dispute_id

    return await _start(ctx, envelope, "split", prepare)


async def resume_waiting_releases(
    ctx: PaymentsContext, marketplace_id: str, freelancer_id: str
) -> int:
    """Carry out the releases and splits that waited for this freelancer's payouts."""
    async with ctx.db.transaction() as session:
        waiting = [
            row.milestone_id
            for row in await repo.escrows_in_state(
                session,
                "release_pending",
                marketplace_id=marketplace_id,
                freelancer_id=freelancer_id,
            )
        ]
    moved = 0
    for milestone_id in waiting:
        try:
            moved += await _resume_one(ctx, milestone_id)
        except Exception as exc:
            # One escrow that cannot go ahead must not hold up the others; its id is in the
            # log so that an operator can look at it (the next pass tries it again).
            log.error("movement.resume_failed", milestone_id=milestone_id, error=repr(exc))
    return moved


async def _resume_one(ctx: PaymentsContext, milestone_id: str) -> bool:
    async with ctx.db.transaction() as session:
        row = await repo.lock_escrow(session, milestone_id)
        if row is None or row.state != "release_pending" or row.frozen:
            return False
        escrow = repo.to_domain(row)
        escrow.operation = escrow.operation or "release"
    await steps.remember_steps(ctx, escrow.operation, milestone_id)
    async with ctx.db.transaction() as session:
        row = await repo.lock_escrow(session, milestone_id)
        if row is None or row.state != "release_pending":
            return False
        escrow = repo.to_domain(row)
        escrow.operation = escrow.operation or "release"
        await drive(ctx, session, row, escrow, lookup_first=True)
        return row.state != "release_pending"


def register(router: EventRouter, ctx: PaymentsContext) -> None:
    """Add the release / refund / split handlers to ``router``."""

    @router.on(MilestoneReleaseRequested)
    async def on_release_requested(envelope: Envelope[MilestoneReleaseRequested]) -> None:
        await release_milestone(ctx, envelope)

    @router.on(MilestoneRefundOrdered)
    async def on_refund_ordered(envelope: Envelope[MilestoneRefundOrdered]) -> None:
        await refund_milestone(ctx, envelope)

    @router.on(MilestoneSplitOrdered)
    async def on_split_ordered(envelope: Envelope[MilestoneSplitOrdered]) -> None:
        await split_milestone(ctx, envelope)


__all__ = ["drive", "register", "resume_waiting_releases"]
