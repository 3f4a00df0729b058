"""Stripe webhooks: verified on the raw body, stored on receipt (answered at once), then
processed by the worker through the inbox, so a replayed event id changes nothing."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import stripe
from cairn_chassis.inbox import record_once
from cairn_chassis.logging import get_logger
from cairn_chassis.outbox import utcnow
from cairn_schemas.events import PaymentChargebackOpened, PaymentRefunded
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_payments.adapters import repository as repo
from cairn_payments.adapters.stripe_gateway import (
    StripeGatewayError,
    charge_result,
    customer_sentence,
)
from cairn_payments.adapters.tables import StripeEventRow
from cairn_payments.domain.escrow import HOLDING
from cairn_payments.service import funding, movements, reconcile
from cairn_payments.service.context import WEBHOOK_CONSUMER, PaymentsContext, save

log = get_logger(__name__)


class BadWebhook(Exception):
    """The request is not a genuine, fresh Stripe event."""


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else None


async def receive(ctx: PaymentsContext, payload: bytes, signature: str | None) -> tuple[str, bool]:
    """Verify and store one webhook; (event id, True if new). Raises :class:`BadWebhook`."""
    if not signature:
        raise BadWebhook("missing Stripe-Signature header")
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise BadWebhook("the body is not JSON") from exc
    if not isinstance(data, dict):
        # The SDK's parser fails on anything else (a signed JSON array answered 500).
        raise BadWebhook("the body is not a Stripe event object")
    try:
        ctx.gateway.construct_event(payload, signature)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise BadWebhook(str(exc) or "signature verification failed") from exc
    event_id = str(data.get("id") or "")
    if not event_id:
        raise BadWebhook("event without an id")
    async with ctx.db.transaction() as session:
        dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        result = await (await session.connection()).execute(
            insert(StripeEventRow)
            .values(
                id=event_id,
                type=str(data.get("type") or "unknown"),
                account=data.get("account"),
                payload=payload.decode(),
                received_at=utcnow(),
                attempts=0,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        return event_id, bool(result.rowcount)


# ---------------------------------------------------------------- handlers
# Each runs inside the transaction that records the event in the inbox; it may return
# a follow-up to run after the commit (Stripe calls that must not hold the inbox row).
FollowUp = Callable[[], Awaitable[Any]]
Handler = Callable[[PaymentsContext, AsyncSession, dict[str, Any]], Awaitable[FollowUp | None]]


async def _payment_intent_succeeded(
    ctx: PaymentsContext, session: AsyncSession, pi: dict[str, Any]
) -> FollowUp | None:
    milestone_id = _get(_get(pi, "metadata") or {}, "milestone_id")
    if not milestone_id:
        return None
    row = await repo.lock_escrow(session, str(milestone_id))
    if row is None:
        return None
    escrow = repo.to_domain(row)
    attempt = _attempt_of(pi)
    # The attempt in the PaymentIntent's metadata decides (one PaymentIntent per attempt, by
    # idempotency key). An older attempt's success is stale. A newer one is the current
    # attempt whose funding transaction was lost after Stripe charged (the worker died
    # mid-call): the escrow still shows the previous, failed attempt, and the redelivered
    # request will find this very PaymentIntent by its key — so the success funds it.
    stale = (
        attempt < escrow.attempt
        if attempt is not None
        else escrow.payment_intent_id not in (None, pi["id"])
    )
    if stale:
        # An older attempt's PaymentIntent succeeded late (e.g. 3-D Secure finished after the
        # customer paid again, and cancelling it had failed): it never funds the escrow, and
        # its money goes back — also when the newer attempt has funded the escrow already
        # (found by the property test: the customer was charged twice).
        log.error("webhook.stale_payment_intent", milestone_id=milestone_id, pi=pi["id"])
        charge_id = charge_result(pi).charge_id
        if charge_id is None or escrow.charge_id == charge_id:
            return None
        key = f"cairn:stale-refund:{pi['id']}"
        request = {
            "charge_id": charge_id,
            "amount": int(_get(pi, "amount_received") or _get(pi, "amount") or 0) or escrow.amount,
            "metadata": {"milestone_id": str(milestone_id), "operation": "stale-refund"},
        }
        # Owed in this very transaction: if the process dies before the call below is
        # made, the reconciler finds the operation unfinished and makes it.
        await repo.remember_operation(
            session, key, "stale-refund", str(milestone_id), request=request
        )

        async def refund_stale() -> Any:
            return await reconcile.carry_out_refund(ctx, key, request)

        return refund_stale
    if row.charged:
        return None  # this PaymentIntent's success is already booked
    result = charge_result(pi)
    if result.charge_id is None:
        return None
    if attempt is not None and attempt > escrow.attempt:
        log.warning("webhook.newer_attempt_funds", milestone_id=milestone_id, attempt=attempt)
        escrow.attempt = attempt
        # That attempt may carry a new amount (the milestone was edited before paying
        # again): the books record what Stripe charged, never the older attempt's amount.
        escrow.amount = int(_get(pi, "amount_received") or _get(pi, "amount") or escrow.amount)
    escrow.resume()
    entries, events = funding.apply_charge_result(escrow, row, result)
    await save(session, row, escrow, entries, events)
    return None


def _attempt_of(pi: dict[str, Any]) -> int | None:
    """The funding attempt a PaymentIntent was made for (its metadata), if it says."""
    raw = str(_get(_get(pi, "metadata") or {}, "attempt") or "")
    return int(raw) if raw.isdigit() else None


async def _payment_intent_failed(
    ctx: PaymentsContext, session: AsyncSession, pi: dict[str, Any]
) -> FollowUp | None:
    milestone_id = _get(_get(pi, "metadata") or {}, "milestone_id")
    if not milestone_id:
        return None
    row = await repo.lock_escrow(session, str(milestone_id))
    if row is None:
        return None
    escrow = repo.to_domain(row)
    if escrow.state not in ("action_required", "funding") or escrow.payment_intent_id != pi["id"]:
        return None  # already reported synchronously, or about another attempt
    error = _get(pi, "last_payment_error") or {}
    code = _get(error, "decline_code") or _get(error, "code")
    escrow.funding_failed(pi["id"])
    reason = customer_sentence(code, _get(error, "message"))
    await save(session, row, escrow, events=[funding.failed_event(escrow, reason, code, pi["id"])])
    return None


async def _setup_intent_succeeded(
    ctx: PaymentsContext, session: AsyncSession, si: dict[str, Any]
) -> FollowUp | None:
    customer, pm = _get(si, "customer"), _get(si, "payment_method")
    if not customer or not pm:
        return None
    profile = await repo.profile_by_customer(session, str(customer))
    if profile is None:
        return None
    profile.default_payment_method_id = str(pm if isinstance(pm, str) else pm.get("id"))
    profile.updated_at = utcnow()
    session.add(profile)
    return None


async def _account_updated(
    ctx: PaymentsContext, session: AsyncSession, account: dict[str, Any]
) -> FollowUp | None:
    profile = await repo.profile_by_account(session, str(account["id"]))
    if profile is None:
        return None
    ready = bool(_get(account, "payouts_enabled"))
    try:
        # Events can arrive out of order or be replayed late: Stripe's current answer wins.
        ready = await ctx.gateway.payouts_enabled(str(account["id"]))
    except StripeGatewayError as exc:
        log.warning("webhook.account_lookup_failed", account=account["id"], error=exc.message)
    due = _get(_get(account, "requirements") or {}, "currently_due") or []
    profile.payouts_enabled = ready
    profile.requirements_due = ", ".join(str(d) for d in due) or None
    profile.updated_at = utcnow()
    session.add(profile)
    if not ready:
        return None
    marketplace_id, freelancer_id = profile.marketplace_id, profile.user_id

    async def release_waiting() -> Any:
        return await movements.resume_waiting_releases(ctx, marketplace_id, freelancer_id)

    return release_waiting


async def _charge_refunded(
    ctx: PaymentsContext, session: AsyncSession, charge: dict[str, Any]
) -> FollowUp | None:
    row = await repo.escrow_by_charge(session, str(charge["id"]))
    if row is None:
        return None
    row = await repo.lock_escrow(session, row.milestone_id)
    assert row is not None
    escrow = repo.to_domain(row)
    refunded_on_stripe = int(_get(charge, "amount_refunded") or 0)
    if escrow.state not in HOLDING or escrow.frozen or refunded_on_stripe < escrow.held:
        return None  # our own refund (already recorded) or a partial one we did not make
    # Refunded outside Cairn (e.g. from the Stripe dashboard): the books follow Stripe.
    entries = escrow.refunded_money(f"external_{charge['id']}", escrow.held, final=True)
    event = PaymentRefunded(
        marketplace_id=escrow.marketplace_id,
        contract_id=escrow.contract_id,
        milestone_id=escrow.milestone_id,
        amount=escrow.amount,
        currency=escrow.currency,
        refund_id=f"external_{charge['id']}",
        charge_id=str(charge["id"]),
    )
    await save(session, row, escrow, entries, [event])
    return None


async def _dispute_created(
    ctx: PaymentsContext, session: AsyncSession, dispute: dict[str, Any]
) -> FollowUp | None:
    charge_id = _get(dispute, "charge")
    charge_id = charge_id if isinstance(charge_id, str) else _get(charge_id, "id")
    row = await repo.escrow_by_charge(session, str(charge_id))
    if row is None:
        log.error("chargeback.unknown_charge", charge_id=charge_id, dispute_id=dispute.get("id"))
        return None
    row = await repo.lock_escrow(session, row.milestone_id)
    assert row is not None
    escrow = repo.to_domain(row)
    amount = int(_get(dispute, "amount") or escrow.charged)
    released = escrow.transferred > 0
    owed_before = escrow.chargeback_owed_by_freelancer
    entries = escrow.chargeback_opened(str(dispute["id"]), amount)
    if escrow.stripe_dispute_id != dispute["id"]:
        return None
    owed_by_freelancer = escrow.chargeback_owed_by_freelancer - owed_before
    # Operators are alerted by this log line (error level) and by the event, which the
    # notifications service turns into an email to the marketplace's operators.
    log.error(
        "chargeback.opened",
        milestone_id=escrow.milestone_id,
        marketplace_id=escrow.marketplace_id,
        dispute_id=dispute["id"],
        amount=amount,
        funds_released=released,
        owed_by_freelancer=owed_by_freelancer,
        policy=escrow.chargeback_after_release,
    )
    event = PaymentChargebackOpened(
        marketplace_id=escrow.marketplace_id,
        contract_id=escrow.contract_id,
        milestone_id=escrow.milestone_id,
        amount=escrow.amount,
        currency=escrow.currency,
        charge_id=str(charge_id),
        stripe_dispute_id=str(dispute["id"]),
        chargeback_amount=max(amount, 1),
        reason=str(_get(dispute, "reason") or "The customer's bank opened a chargeback."),
        funds_released=released,
        owed_by_freelancer=owed_by_freelancer,
    )
    await save(session, row, escrow, entries, [event])
    return None


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _payment_intent_succeeded,
    "payment_intent.payment_failed": _payment_intent_failed,
    "setup_intent.succeeded": _setup_intent_succeeded,
    "account.updated": _account_updated,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
}


class NotYet(Exception):
    """The event has to wait (its escrow's last Stripe call is being reconciled)."""


async def _settle_first(ctx: PaymentsContext, event_type: str, payload: str) -> None:
    """A chargeback is booked only on settled books: if the escrow's last Stripe call has
    an unknown outcome, reconcile it first (or make the event wait)."""
    if event_type != "charge.dispute.created":
        return
    dispute = json.loads(payload).get("data", {}).get("object", {})
    charge_id = _get(dispute, "charge")
    charge_id = charge_id if isinstance(charge_id, str) else _get(charge_id, "id")
    async with ctx.db.transaction() as session:
        escrow = await repo.escrow_by_charge(session, str(charge_id))
    if escrow is None or escrow.state != "reconciling":
        return
    if await reconcile.settle(ctx, escrow.milestone_id) == "reconciling":
        raise NotYet(f"escrow {escrow.milestone_id} is being reconciled")


async def process_event(ctx: PaymentsContext, event_id: str) -> bool:
    """Process one stored event through the inbox; False if it was already processed.

    Raises :class:`NotYet` when the event has to wait for a reconciliation."""
    follow_up: FollowUp | None = None
    async with ctx.db.transaction() as session:
        stored = await session.get(StripeEventRow, event_id)
        if stored is None or stored.processed_at is not None:
            return False
        event_type, payload = stored.type, stored.payload
    await _settle_first(ctx, event_type, payload)
    async with ctx.db.transaction() as session:
        query = select(StripeEventRow).where(StripeEventRow.id == event_id)
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = (await session.exec(query)).first()
        if row is None or row.processed_at is not None:
            return False
        row.processed_at = utcnow()
        row.attempts += 1
        session.add(row)
        if not await record_once(session, WEBHOOK_CONSUMER, row.id, row.type):
            return False
        handler = HANDLERS.get(row.type)
        if handler is not None:
            data = json.loads(row.payload)
            obj = data.get("data", {}).get("object", {})
            follow_up = await handler(ctx, session, obj)
    if follow_up is not None:
        await follow_up()
    return True


MAX_ATTEMPTS = 10
"""An event that failed this often is left for an operator (its ``error`` says why)."""


async def process_pending(ctx: PaymentsContext, *, limit: int = 50) -> int:
    """Process every stored event not yet processed (oldest first)."""
    async with ctx.db.transaction() as session:
        ids = (
            await session.exec(
                select(StripeEventRow.id)
                .where(col(StripeEventRow.processed_at).is_(None))
                .where(StripeEventRow.attempts < MAX_ATTEMPTS)
                .order_by(col(StripeEventRow.received_at))
                .limit(limit)
            )
        ).all()
    done = 0
    for event_id in ids:
        done += await process_or_record(ctx, event_id)
    return done


async def process_or_record(ctx: PaymentsContext, event_id: str) -> bool:
    """Process one stored event; a failure is logged and recorded on the event (its
    ``attempts`` and ``error``) instead of raised — by the API right after receipt and by
    the worker's sweep alike. True if it was processed now."""
    try:
        return await process_event(ctx, event_id)
    except NotYet as exc:
        log.info("webhook.waiting", event_id=event_id, reason=str(exc))
    except Exception as exc:
        log.warning("webhook.processing_failed", event_id=event_id, error=repr(exc))
        async with ctx.db.transaction() as session:
            row = await session.get(StripeEventRow, event_id)
            if row is not None:
                row.attempts += 1
                row.error = repr(exc)[:2000]
                session.add(row)
    return False
