"""The Stripe steps of a release, refund or split: each makes (or, when reconciling,
first looks up) its Stripe object with its stored idempotency key, and books the ledger
entries and outcome events it produces."""

from __future__ import annotations

from typing import Any

from cairn_chassis.logging import get_logger
from cairn_chassis.outbox import utcnow
from cairn_schemas.base import Event
from cairn_schemas.events import (
    PaymentRefunded,
    PaymentReleased,
    PaymentReleasePending,
    PaymentSplitSettled,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_payments.adapters import repository as repo
from cairn_payments.adapters.stripe_gateway import StripeGatewayError, StripeRefused
from cairn_payments.adapters.tables import EscrowRow
from cairn_payments.domain.escrow import Escrow
from cairn_payments.domain.ledger import LedgerEntry
from cairn_payments.service.context import PaymentsContext, movement_key, remember, save

log = get_logger(__name__)

NO_ACCOUNT = "Set up payouts (your bank details) to receive this payment; it waits for you."
NOT_READY = "Finish your payout onboarding to receive this payment; it is released then."

_STEPS: dict[str, tuple[str, ...]] = {
    "release": ("release",),
    "refund": ("reversal", "refund"),
    "split": ("split-transfer", "split-refund"),
}


async def remember_steps(ctx: PaymentsContext, operation: str, milestone_id: str) -> bool:
    """Store the idempotency keys of every step of ``operation`` before any call. True if
    an earlier try had stored one: it may have made its Stripe calls before it died, so
    this try looks its objects up before anything else."""
    tried_before = False
    for step in _STEPS.get(operation, ()):
        tried_before |= not await remember(
            ctx, movement_key(step, milestone_id), step, milestone_id
        )
    return tried_before


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
        except StripeGatewayError as exc:
            # Waits; the reconciler asks Stripe again (reconcile.recheck_waiting_accounts).
            log.warning(
                "movement.account_lookup_failed",
                milestone_id=escrow.milestone_id,
                account=profile.stripe_account_id,
                error=exc.message,
            )
            ready = False
        if not ready:
            return None, NOT_READY
        profile.payouts_enabled = True
        profile.updated_at = utcnow()
        session.add(profile)
    return profile.stripe_account_id, ""


class Progress:
    """Ledger entries and events of a movement so far (saved even if a later step fails)."""

    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []
        self.events: list[Event] = []


async def _wait_for_payouts(
    session: AsyncSession, row: EscrowRow, escrow: Escrow, reason: str, progress: Progress
) -> None:
    if escrow.release_waits(escrow.platform_fee_bps):
        progress.events.append(
            PaymentReleasePending(
                **_common(escrow), freelancer_id=escrow.freelancer_id, reason=reason
            )
        )
    await save(session, row, escrow, progress.entries, progress.events)


async def _transfer(
    ctx: PaymentsContext,
    session: AsyncSession,
    row: EscrowRow,
    escrow: Escrow,
    operation: str,
    key: str,
    net: int,
    lookup_first: bool,
    progress: Progress,
) -> str | None:
    """The transfer of ``net`` to the freelancer for a release or split: found (when
    looking up first), made, or None when it waits for the freelancer's payouts (saved).

    A transfer found is booked whatever the account's state now: an earlier try made it
    and died before committing, so the books follow Stripe (found by the chaos run: a split
    reached Stripe, then its redelivered request found the account lookup failing and
    waited, booking neither the transfer nor the refund)."""
    assert escrow.charge_id is not None
    if net == 0:
        return f"no_transfer_{escrow.milestone_id}"  # nothing to pay: no account needed
    if lookup_first:
        found = await ctx.gateway.find_transfer(
            transfer_group=escrow.milestone_id, operation=operation
        )
        if found is not None:
            return found
    account, why = await _payout_account(ctx, session, escrow)
    if account is None:
        await _wait_for_payouts(session, row, escrow, why, progress)
        return None
    try:
        return await ctx.gateway.transfer(
            amount=net,
            currency=escrow.currency,
            destination=account,
            source_transaction=escrow.charge_id,
            transfer_group=escrow.milestone_id,
            metadata=_metadata(escrow, operation),
            key=key,
        )
    except StripeRefused as exc:
        log.warning(
            "movement.transfer_refused",
            milestone_id=escrow.milestone_id,
            operation=operation,
            error=exc.message,
        )
        row.last_error = exc.message
        await _wait_for_payouts(session, row, escrow, NOT_READY, progress)
        return None


async def refund_once(
    ctx: PaymentsContext,
    *,
    charge_id: str,
    amount: int,
    metadata: dict[str, str],
    key: str,
    lookup_first: bool,
) -> str:
    """The refund of ``amount`` of a charge for one operation (``metadata["operation"]``):
    looked up by charge + operation first when an earlier try may have made it, else made
    with its stored idempotency key."""
    if lookup_first:
        found = await ctx.gateway.find_refund(charge_id=charge_id, operation=metadata["operation"])
        if found is not None:
            return found
    return await ctx.gateway.refund(charge_id=charge_id, amount=amount, metadata=metadata, key=key)


async def release_step(
    ctx: PaymentsContext,
    session: AsyncSession,
    row: EscrowRow,
    escrow: Escrow,
    lookup_first: bool,
    progress: Progress,
) -> None:
    fee, net = escrow.release_parts(escrow.platform_fee_bps)
    key = movement_key("release", escrow.milestone_id)
    transfer_id = await _transfer(
        ctx, session, row, escrow, "release", key, net, lookup_first, progress
    )
    if transfer_id is None:
        return  # waits for the freelancer's payouts
    progress.entries += escrow.released(transfer_id, fee, net)
    await repo.finish_operation(session, key, "succeeded", object_id=transfer_id)
    progress.events.append(
        PaymentReleased(
            **_common(escrow), transfer_id=transfer_id, amount_to_freelancer=net, platform_fee=fee
        )
    )
    await save(session, row, escrow, progress.entries, progress.events)


async def refund_step(
    ctx: PaymentsContext,
    session: AsyncSession,
    row: EscrowRow,
    escrow: Escrow,
    lookup_first: bool,
    progress: Progress,
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
    refund_id = await refund_once(
        ctx,
        charge_id=escrow.charge_id,
        amount=escrow.held,
        metadata=_metadata(escrow, "refund"),
        key=key,
        lookup_first=lookup_first,
    )
    progress.entries += escrow.refunded_money(refund_id, escrow.held, final=True)
    await repo.finish_operation(session, key, "succeeded", object_id=refund_id)
    progress.events.append(
        PaymentRefunded(**_common(escrow), refund_id=refund_id, charge_id=escrow.charge_id)
    )
    await save(session, row, escrow, progress.entries, progress.events)


async def split_step(
    ctx: PaymentsContext,
    session: AsyncSession,
    row: EscrowRow,
    escrow: Escrow,
    lookup_first: bool,
    progress: Progress,
) -> None:
    assert escrow.charge_id is not None
    fee = escrow.fee
    net = escrow.transferred
    if escrow.transfer_id is None:
        fee, net = escrow.split_parts(
            escrow.split_to_freelancer, escrow.split_to_customer, escrow.platform_fee_bps
        )
        key = movement_key("split-transfer", escrow.milestone_id)
        transfer_id = await _transfer(
            ctx, session, row, escrow, "split", key, net, lookup_first, progress
        )
        if transfer_id is None:
            return  # waits for the freelancer's payouts
        progress.entries += escrow.split_transferred(transfer_id, fee, net)
        await repo.finish_operation(session, key, "succeeded", object_id=transfer_id)
    key = movement_key("split-refund", escrow.milestone_id)
    to_customer = escrow.held
    refund_id = await refund_once(
        ctx,
        charge_id=escrow.charge_id,
        amount=to_customer,
        metadata=_metadata(escrow, "split"),
        key=key,
        lookup_first=lookup_first,
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


STEPS = {"release": release_step, "refund": refund_step, "split": split_step}
