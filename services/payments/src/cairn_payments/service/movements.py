"""Release, refund and split of a funded escrow (DESIGN §4).

Each movement is one or two Stripe calls with idempotency keys derived from (milestone,
step), stored before the call. ``drive`` carries the escrow's current movement as far as
it can go; when reconciling it looks each object up before creating anything.
"""

from __future__ import annotations

from typing import Any

from cairn_chassis.logging import get_logger
from cairn_chassis.messaging import EventRouter, handle_once
from cairn_chassis.outbox import utcnow
from cairn_schemas.base import Event
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import (
    MilestoneRefundOrdered,
    MilestoneReleaseRequested,
    MilestoneSplitOrdered,
    PaymentRefunded,
    PaymentReleased,
    PaymentReleasePending,
    PaymentSplitSettled,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_payments.adapters import repository as repo
from cairn_payments.adapters.stripe_gateway import (
    StripeGatewayError,
    StripeRefused,
    StripeUnknownOutcome,
)
from cairn_payments.adapters.tables import EscrowRow
from cairn_payments.domain.errors import EscrowRuleBroken
from cairn_payments.domain.escrow import HOLDING, Escrow, Operation
from cairn_payments.domain.ledger import LedgerEntry
from cairn_payments.service import funding
from cairn_payments.service.context import (
    CONSUMER,
    PaymentsContext,
    movement_key,
    remember,
    save,
)

log = get_logger(__name__)

NO_ACCOUNT = "Set up payouts (your bank details) to receive this payment; it waits for you."
NOT_READY = "Finish your payout onboarding to receive this payment; it is released then."

_STEPS: dict[str, tuple[str, ...]] = {
    "release": ("release",),
    "refund": ("reversal", "refund"),
    "split": ("split-transfer", "split-refund"),
}


async def remember_steps(ctx: PaymentsContext, operation: str, milestone_id: str) -> None:
    """Store the idempotency keys of every step of ``operation`` before any call."""
    for step in _STEPS.get(operation, ()):
        await remember(ctx, movement_key(step, milestone_id), step, milestone_id)


def _common(escrow: Escrow) -> dict[str, Any]:
    return {
        "marketplace_id": escrow.marketplace_id,
        "contract_id": escrow.contract_id,
        "milestone_id": escrow.milestone_id,
        "amount": escrow.amount,
        "currency": escrow.currency,
    }


def _metadata(escrow: Escrow, operation: str) -> dict[str, str]:
    return {
        "marketplace_id": escrow.marketplace_id,
        "contract_id": escrow.contract_id,
        "milestone_id": escrow.milestone_id,
        "operation": operation,
    }


async def _payout_account(
    ctx: PaymentsContext, session: AsyncSession, escrow: Escrow
) -> tuple[str | None, str]:
    """The freelancer's connected account if it can receive transfers, else (None, why)."""
    profile = await repo.get_profile(
        session, escrow.marketplace_id, escrow.freelancer_id, "freelancer", lock=True
    )
    if profile is None or profile.stripe_account_id is None:
        return None, NO_ACCOUNT
    if not profile.payouts_enabled:
        # The account.updated webhook may not have arrived yet: ask Stripe once.
        try:
            ready = await ctx.gateway.payouts_enabled(profile.stripe_account_id)
        except StripeGatewayError:
            ready = False
        if not ready:
            return None, NOT_READY
        profile.payouts_enabled = True
        profile.updated_at = utcnow()
        session.add(profile)
    return profile.stripe_account_id, ""


class _Progress:
    """Ledger entries and events of a movement so far (saved even if a later step fails)."""

    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []
        self.events: list[Event] = []


async def _wait_for_payouts(
    session: AsyncSession, row: EscrowRow, escrow: Escrow, reason: str, progress: _Progress
) -> None:
    if escrow.release_waits(escrow.platform_fee_bps):
        progress.events.append(
            PaymentReleasePending(
                **_common(escrow), freelancer_id=escrow.freelancer_id, reason=reason
            )
        )
    await save(session, row, escrow, progress.entries, progress.events)


async def _release(
    ctx: PaymentsContext,
    session: AsyncSession,
    row: EscrowRow,
    escrow: Escrow,
    lookup_first: bool,
    progress: _Progress,
) -> None:
    fee, net = escrow.release_parts(escrow.platform_fee_bps)
    account, why = await _payout_account(ctx, session, escrow)
    if account is None:
        await _wait_for_payouts(session, row, escrow, why, progress)
        return
    assert escrow.charge_id is not None
    key = movement_key("release", escrow.milestone_id)
    transfer_id: str | None = f"no_transfer_{escrow.milestone_id}" if net == 0 else None
    if transfer_id is None and lookup_first:
        transfer_id = await ctx.gateway.find_transfer(
            transfer_group=escrow.milestone_id, operation="release"
        )
    if transfer_id is None:
        try:
            transfer_id = await ctx.gateway.transfer(
                amount=net,
                currency=escrow.currency,
                destination=account,
                source_transaction=escrow.charge_id,
                transfer_group=escrow.milestone_id,
                metadata=_metadata(escrow, "release"),
                key=key,
            )
        except StripeRefused as exc:
            row.last_error = exc.message
            await _wait_for_payouts(session, row, escrow, NOT_READY, progress)
            return
    progress.entries += escrow.released(transfer_id, fee, net)
    await repo.finish_operation(session, key, "succeeded", object_id=transfer_id)
    progress.events.append(
        PaymentReleased(
            **_common(escrow), transfer_id=transfer_id, amount_to_freelancer=net, platform_fee=fee
        )
    )
    await save(session, row, escrow, progress.entries, progress.events)


async def _refund(
    ctx: PaymentsContext,
    session: AsyncSession,
    row: EscrowRow,
    escrow: Escrow,
    lookup_first: bool,
    progress: _Progress,
) -> None:
    to_reverse, _ = escrow.refund_parts()
    assert escrow.charge_id is not None
    if to_reverse > 0 and escrow.reversal_id is None and escrow.transfer_id:
        key = movement_key("reversal", escrow.milestone_id)
        reversal_id = None
        if lookup_first:
            reversal_id = await ctx.gateway.find_reversal(transfer_id=escrow.transfer_id)
        if reversal_id is None:
            reversal_id = await ctx.gateway.reverse_transfer(
                transfer_id=escrow.transfer_id,
                amount=to_reverse,
                metadata=_metadata(escrow, "refund"),
                key=key,
            )
        progress.entries += escrow.transfer_reversed(reversal_id)
        await repo.finish_operation(session, key, "succeeded", object_id=reversal_id)
    key = movement_key("refund", escrow.milestone_id)
    refund_id = None
    if lookup_first:
        refund_id = await ctx.gateway.find_refund(charge_id=escrow.charge_id, operation="refund")
    if refund_id is None:
        refund_id = await ctx.gateway.refund(
            charge_id=escrow.charge_id,
            amount=escrow.held,
            metadata=_metadata(escrow, "refund"),
            key=key,
        )
    progress.entries += escrow.refunded_money(refund_id, escrow.held, final=True)
    await repo.finish_operation(session, key, "succeeded", object_id=refund_id)
    progress.events.append(
        PaymentRefunded(**_common(escrow), refund_id=refund_id, charge_id=escrow.charge_id)
    )
    await save(session, row, escrow, progress.entries, progress.events)


async def _split(
    ctx: PaymentsContext,
    session: AsyncSession,
    row: EscrowRow,
    escrow: Escrow,
    lookup_first: bool,
    progress: _Progress,
) -> None:
    assert escrow.charge_id is not None
    fee = escrow.fee
    net = escrow.transferred
    if escrow.transfer_id is None:
        fee, net = escrow.split_parts(
            escrow.split_to_freelancer, escrow.split_to_customer, escrow.platform_fee_bps
        )
        account, why = await _payout_account(ctx, session, escrow)
        if account is None:
            await _wait_for_payouts(session, row, escrow, why, progress)
            return
        key = movement_key("split-transfer", escrow.milestone_id)
        transfer_id: str | None = f"no_transfer_{escrow.milestone_id}" if net == 0 else None
        if transfer_id is None and lookup_first:
            transfer_id = await ctx.gateway.find_transfer(
                transfer_group=escrow.milestone_id, operation="split"
            )
        if transfer_id is None:
            try:
                transfer_id = await ctx.gateway.transfer(
                    amount=net,
                    currency=escrow.currency,
                    destination=account,
                    source_transaction=escrow.charge_id,
                    transfer_group=escrow.milestone_id,
                    metadata=_metadata(escrow, "split"),
                    key=key,
                )
            except StripeRefused as exc:
                row.last_error = exc.message
                await _wait_for_payouts(session, row, escrow, NOT_READY, progress)
                return
        progress.entries += escrow.split_transferred(transfer_id, fee, net)
        await repo.finish_operation(session, key, "succeeded", object_id=transfer_id)
    key = movement_key("split-refund", escrow.milestone_id)
    to_customer = escrow.held
    refund_id = None
    if lookup_first:
        refund_id = await ctx.gateway.find_refund(charge_id=escrow.charge_id, operation="split")
    if refund_id is None:
        refund_id = await ctx.gateway.refund(
            charge_id=escrow.charge_id,
            amount=to_customer,
            metadata=_metadata(escrow, "split"),
            key=key,
        )
    progress.entries += escrow.split_refunded(refund_id)
    await repo.finish_operation(session, key, "succeeded", object_id=refund_id)
    assert escrow.transfer_id is not None
    progress.events.append(
        PaymentSplitSettled(
            **_common(escrow),
            dispute_id=escrow.split_dispute_id or escrow.milestone_id,
            transfer_id=escrow.transfer_id,
            refund_id=refund_id,
            amount_to_freelancer=net,
            platform_fee=fee,
            amount_refunded=to_customer,
        )
    )
    await save(session, row, escrow, progress.entries, progress.events)


_DRIVERS = {"release": _release, "refund": _refund, "split": _split}


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
    progress = _Progress()
    try:
        await _DRIVERS[operation](ctx, session, row, escrow, lookup_first, progress)
    except StripeUnknownOutcome as exc:
        news = not reconciling
        escrow.to_reconciling(operation)
        row.last_error = exc.message
        if news:
            progress.events.append(
                funding.reconciling_event(escrow, f"The {operation}'s outcome is being confirmed.")
            )
        await save(session, row, escrow, progress.entries, progress.events)
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
    await remember_steps(ctx, operation, milestone_id)

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
        await drive(ctx, session, row, escrow, lookup_first=False)

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
        async with ctx.db.transaction() as session:
            row = await repo.lock_escrow(session, milestone_id)
            if row is None or row.state != "release_pending":
                continue
            escrow = repo.to_domain(row)
            escrow.operation = escrow.operation or "release"
        await remember_steps(ctx, escrow.operation, milestone_id)
        async with ctx.db.transaction() as session:
            row = await repo.lock_escrow(session, milestone_id)
            if row is None or row.state != "release_pending":
                continue
            escrow = repo.to_domain(row)
            escrow.operation = escrow.operation or "release"
            await drive(ctx, session, row, escrow, lookup_first=True)
            moved += row.state != "release_pending"
    return moved


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


__all__ = ["HOLDING", "drive", "register", "resume_waiting_releases"]
