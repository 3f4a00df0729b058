"""Funding: charge the customer's saved card off-session for a milestone (DESIGN §4)."""

from __future__ import annotations

from typing import Any

from cairn_chassis.logging import get_logger
from cairn_chassis.messaging import handle_once
from cairn_schemas.base import Event
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import (
    MilestoneFundingRequested,
    PaymentActionRequired,
    PaymentFailed,
    PaymentFunded,
    PaymentReconciling,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_payments.adapters import repository as repo
from cairn_payments.adapters.stripe_gateway import (
    ChargeResult,
    StripeDeclined,
    StripeGatewayError,
    StripeRefused,
    StripeUnknownOutcome,
    customer_sentence,
)
from cairn_payments.adapters.tables import EscrowRow
from cairn_payments.domain.escrow import Escrow
from cairn_payments.domain.ledger import LedgerEntry
from cairn_payments.service.context import CONSUMER, PaymentsContext, charge_key, remember, save

log = get_logger(__name__)

NO_CARD = "No saved card: add a card to your payment profile, then pay this milestone again."


def _common(escrow: Escrow) -> dict[str, Any]:
    return {
        "marketplace_id": escrow.marketplace_id,
        "contract_id": escrow.contract_id,
        "milestone_id": escrow.milestone_id,
        "amount": escrow.amount,
        "currency": escrow.currency,
    }


def failed_event(
    escrow: Escrow, reason: str, code: str | None, payment_intent_id: str | None
) -> PaymentFailed:
    """The PaymentFailed event of the escrow's current attempt."""
    return PaymentFailed(
        **_common(escrow),
        attempt=escrow.attempt,
        reason=reason,
        failure_code=code,
        payment_intent_id=payment_intent_id,
    )


def reconciling_event(escrow: Escrow, reason: str) -> PaymentReconciling:
    """Tell the contracts service an outcome is unknown for now."""
    assert escrow.operation is not None
    return PaymentReconciling(
        **_common(escrow),
        operation=escrow.operation,
        reason=reason,
        attempt=escrow.attempt if escrow.operation == "charge" else None,
    )


def apply_charge_result(
    escrow: Escrow, row: EscrowRow, result: ChargeResult
) -> tuple[list[LedgerEntry], list[Event]]:
    """Move the escrow according to what the PaymentIntent came to."""
    if result.status == "succeeded" and result.charge_id:
        entries = escrow.funding_succeeded(result.payment_intent_id, result.charge_id)
        events: list[Event] = []
        if entries:
            events.append(
                PaymentFunded(
                    **_common(escrow),
                    attempt=escrow.attempt,
                    payment_intent_id=result.payment_intent_id,
                    charge_id=result.charge_id,
                )
            )
        return entries, events
    if result.status == "requires_action" and result.client_secret:
        news = escrow.state != "action_required"
        escrow.funding_needs_action(result.payment_intent_id)
        row.action_client_secret = result.client_secret
        if not news:
            return [], []
        return [], [
            PaymentActionRequired(
                **_common(escrow),
                attempt=escrow.attempt,
                payment_intent_id=result.payment_intent_id,
                client_secret=result.client_secret,
            )
        ]
    if result.status == "processing":
        escrow.state = "funding"
        escrow.payment_intent_id = result.payment_intent_id
        return [], []  # the payment_intent.succeeded / payment_failed webhook finishes it
    escrow.funding_failed(result.payment_intent_id)
    reason = customer_sentence(result.failure_code, result.failure_message)
    return [], [failed_event(escrow, reason, result.failure_code, result.payment_intent_id)]


async def charge_now(
    ctx: PaymentsContext,
    session: AsyncSession,
    row: EscrowRow,
    escrow: Escrow,
    *,
    payment_method_id: str | None,
    lookup_first: bool,
    reconciling: bool = False,
) -> None:
    """Make (or, when reconciling, first look up) the charge of the current attempt.

    ``reconciling``: this is the reconciler's retry, so the reconciling notice went out."""
    key = charge_key(escrow.milestone_id, escrow.attempt)
    profile = await repo.get_profile(session, escrow.marketplace_id, escrow.customer_id, "customer")
    pm = payment_method_id or (profile.default_payment_method_id if profile else None)
    customer = profile.stripe_customer_id if profile else None
    if customer is None or pm is None:
        escrow.funding_failed(None)
        await repo.finish_operation(session, key, "failed", error="no saved card")
        event = failed_event(escrow, NO_CARD, "no_payment_method", None)
        await save(session, row, escrow, events=[event])
        return
    try:
        result: ChargeResult | None = None
        if lookup_first:
            result = await ctx.gateway.find_charge(
                customer_id=customer, milestone_id=escrow.milestone_id, attempt=escrow.attempt
            )
        if result is None:
            result = await ctx.gateway.charge(
                amount=escrow.amount,
                currency=escrow.currency,
                customer_id=customer,
                payment_method_id=pm,
                transfer_group=escrow.milestone_id,
                metadata={
                    "marketplace_id": escrow.marketplace_id,
                    "contract_id": escrow.contract_id,
                    "milestone_id": escrow.milestone_id,
                    "attempt": str(escrow.attempt),
                    "operation": "charge",
                },
                key=key,
            )
    except StripeDeclined as exc:
        escrow.funding_failed(exc.payment_intent_id)
        await repo.finish_operation(session, key, "failed", error=exc.message)
        code = exc.code or "card_declined"
        event = failed_event(escrow, exc.message, code, exc.payment_intent_id)
        await save(session, row, escrow, events=[event])
        return
    except StripeRefused as exc:
        escrow.funding_failed(None)
        await repo.finish_operation(session, key, "failed", error=exc.message)
        reason = customer_sentence(exc.code, exc.message)
        await save(session, row, escrow, events=[failed_event(escrow, reason, exc.code, None)])
        return
    except StripeUnknownOutcome as exc:
        news = not reconciling
        escrow.to_reconciling("charge")
        row.last_error = exc.message
        await repo.finish_operation(session, key, "unknown", error=exc.message)
        notice = reconciling_event(escrow, "The card payment's outcome is being confirmed.")
        await save(session, row, escrow, events=[notice] if news else [])
        return
    entries, events = apply_charge_result(escrow, row, result)
    await repo.finish_operation(session, key, "succeeded", object_id=result.payment_intent_id)
    await save(session, row, escrow, entries, events)


async def fund_milestone(
    ctx: PaymentsContext, envelope: Envelope[MilestoneFundingRequested]
) -> bool:
    """Charge the milestone's amount once per (milestone, attempt); False on a redelivery."""
    ev = envelope.event
    await remember(ctx, charge_key(ev.milestone_id, ev.attempt), "charge", ev.milestone_id)

    async def effect(session: AsyncSession) -> None:
        row = await repo.lock_escrow(session, ev.milestone_id)
        if row is None:
            row = EscrowRow(
                milestone_id=ev.milestone_id,
                marketplace_id=ev.marketplace_id,
                contract_id=ev.contract_id,
                customer_id=ev.customer_id,
                freelancer_id=ev.freelancer_id,
                amount=ev.amount,
                currency=ev.currency,
                state="funding",
                attempt=ev.attempt,
                platform_fee_bps=ev.platform_fee_bps,
                chargeback_after_release=ev.chargeback_after_release,
            )
            session.add(row)
            await session.flush()
        escrow = repo.to_domain(row)
        if not escrow.may_fund(ev.attempt):
            log.info(
                "funding.ignored",
                milestone_id=ev.milestone_id,
                attempt=ev.attempt,
                state=escrow.state,
            )
            return
        abandoned = escrow.payment_intent_id if escrow.state == "action_required" else None
        escrow.begin_funding(ev.attempt)
        if abandoned:
            # The customer pays again instead of authenticating: the old PaymentIntent must
            # never succeed later (best effort; a late success is refunded by the webhook).
            try:
                await ctx.gateway.cancel_payment_intent(abandoned)
            except StripeGatewayError as exc:
                log.warning("funding.cancel_failed", payment_intent_id=abandoned, error=exc.message)
        # A new attempt may carry a new amount (the milestone was edited before paying).
        escrow.amount, escrow.currency = ev.amount, ev.currency
        escrow.platform_fee_bps = ev.platform_fee_bps
        escrow.chargeback_after_release = ev.chargeback_after_release
        escrow.freelancer_id = ev.freelancer_id
        await charge_now(
            ctx, session, row, escrow, payment_method_id=ev.payment_method_id, lookup_first=False
        )

    return await handle_once(ctx.db, CONSUMER, envelope, effect)
