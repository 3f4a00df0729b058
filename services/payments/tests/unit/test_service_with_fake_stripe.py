"""The use cases on an SQLite database and a fake Stripe: which calls are made, in which
order, and what an unknown outcome leads to."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from cairn_chassis.db import Database
from cairn_chassis.outbox import OutboxMessage
from cairn_payments.adapters import repository as repo
from cairn_payments.adapters.stripe_gateway import (
    ChargeResult,
    StripeDeclined,
    StripeGateway,
    StripeRefused,
    StripeUnknownOutcome,
)
from cairn_payments.adapters.tables import PaymentProfile, StripeEventRow, StripeOperation
from cairn_payments.config import Settings
from cairn_payments.service import funding, movements, reconcile, webhooks
from cairn_payments.service.context import PaymentsContext
from cairn_schemas.base import Actor, Event
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import (
    MilestoneFundingRequested,
    MilestoneReleaseRequested,
    MilestoneSplitOrdered,
)
from pydantic import ValidationError
from sqlmodel import SQLModel, select

from .fake_stripe import FakeStripe, unknown


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[PaymentsContext]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    settings = Settings(database_url=db.url, jwt_secret="x" * 32)
    yield PaymentsContext(settings, db, cast(StripeGateway, FakeStripe()))
    await db.dispose()


def fake(ctx: PaymentsContext) -> FakeStripe:
    return cast(FakeStripe, ctx.gateway)


MILESTONE = {
    "marketplace_id": "mkt",
    "contract_id": "ctr",
    "milestone_id": "mst",
    "title": "Wireframes",
    "amount": 10_000,
    "currency": "EUR",
    "version": 1,
    "state": "funding",
    "actor": Actor(user_id="cu", role="customer"),
}


def envelope(event: Event) -> Envelope[Any]:
    return Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="/test",
        time=datetime.now(UTC),
        subject=None,
        event=event,
    )


def funding_requested(attempt: int = 1) -> MilestoneFundingRequested:
    return MilestoneFundingRequested(
        **MILESTONE,
        customer_id="cu",
        freelancer_id="fr",
        platform_fee_bps=1_000,
        attempt=attempt,
    )


async def with_card(ctx: PaymentsContext, *, freelancer_ready: bool = True) -> None:
    async with ctx.db.transaction() as s:
        s.add(
            PaymentProfile(
                marketplace_id="mkt",
                user_id="cu",
                kind="customer",
                stripe_customer_id="cus_1",
                default_payment_method_id="pm_1",
            )
        )
        s.add(
            PaymentProfile(
                marketplace_id="mkt",
                user_id="fr",
                kind="freelancer",
                stripe_account_id="acct_1",
                payouts_enabled=freelancer_ready,
            )
        )


async def published(ctx: PaymentsContext) -> list[str]:
    async with ctx.db.transaction() as s:
        rows = (await s.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all()  # type: ignore[arg-type]
        return [r.event_type for r in rows]


async def state(ctx: PaymentsContext, milestone_id: str = "mst") -> str:
    async with ctx.db.transaction() as s:
        row = await repo.get_escrow(s, milestone_id)
        assert row is not None
        return row.state


async def test_the_idempotency_key_is_stored_before_the_charge(ctx: PaymentsContext) -> None:
    await with_card(ctx)
    stored_before: list[bool] = []
    original = FakeStripe.charge

    async def charge_checking_key(self: FakeStripe, **kw: Any) -> ChargeResult:
        # A second connection sees only committed rows (SQLite's writer lock is held).
        path = ctx.db.url.split(":///", 1)[1]
        with sqlite3.connect(path) as conn:
            found = conn.execute(
                "SELECT status FROM stripe_operations WHERE idempotency_key = ?", (kw["key"],)
            ).fetchall()
        stored_before.append(found == [("started",)])
        return await original(self, **kw)

    fake(ctx).charge = charge_checking_key.__get__(fake(ctx))  # type: ignore[method-assign]
    await funding.fund_milestone(ctx, envelope(funding_requested()))
    assert stored_before == [True]
    assert fake(ctx).last_metadata["milestone_id"] == "mst"
    assert await published(ctx) == ["cairn.payment.funded"]


async def test_a_redelivered_funding_request_does_not_call_stripe_again(
    ctx: PaymentsContext,
) -> None:
    await with_card(ctx)
    env = envelope(funding_requested())
    assert await funding.fund_milestone(ctx, env) is True
    assert await funding.fund_milestone(ctx, env) is False
    await funding.fund_milestone(ctx, envelope(funding_requested()))  # same attempt, new id
    assert [c for c, _ in fake(ctx).calls] == ["charge"]


async def test_unknown_charge_outcome_is_looked_up_not_repeated(ctx: PaymentsContext) -> None:
    await with_card(ctx)
    fake(ctx).fail_next["charge"] = StripeUnknownOutcome("timed out")
    await funding.fund_milestone(ctx, envelope(funding_requested()))
    assert await state(ctx) == "reconciling"
    assert await published(ctx) == ["cairn.payment.reconciling"]

    await reconcile.sweep(ctx)

    assert [c for c, _ in fake(ctx).calls] == ["charge", "find_charge"]
    assert await state(ctx) == "funded"
    assert await published(ctx) == ["cairn.payment.reconciling", "cairn.payment.funded"]


async def test_reconciler_reissues_with_the_same_key_only_when_stripe_has_nothing(
    ctx: PaymentsContext,
) -> None:
    await with_card(ctx)
    fake(ctx).fail_next["charge_before"] = StripeUnknownOutcome("502, nothing done")
    await funding.fund_milestone(ctx, envelope(funding_requested()))
    assert await state(ctx) == "reconciling"

    await reconcile.sweep(ctx)

    keys = [k for c, k in fake(ctx).calls if c == "charge"]
    assert [c for c, _ in fake(ctx).calls] == ["charge", "find_charge", "charge"]
    assert keys[0] == keys[1]
    assert await state(ctx) == "funded"


async def test_lookup_failing_again_stays_reconciling_without_a_second_notice(
    ctx: PaymentsContext,
) -> None:
    await with_card(ctx)
    fake(ctx).fail_next["charge"] = StripeUnknownOutcome("timeout")
    await funding.fund_milestone(ctx, envelope(funding_requested()))
    fake(ctx).fail_next["find"] = StripeUnknownOutcome("timeout again")
    await reconcile.sweep(ctx)
    assert await state(ctx) == "reconciling"
    assert await published(ctx) == ["cairn.payment.reconciling"]


async def test_a_decline_is_reported_and_a_new_attempt_may_follow(ctx: PaymentsContext) -> None:
    await with_card(ctx)
    fake(ctx).charge_result = "failed"
    await funding.fund_milestone(ctx, envelope(funding_requested(attempt=1)))
    assert await state(ctx) == "failed"
    fake(ctx).charge_result = "succeeded"
    await funding.fund_milestone(ctx, envelope(funding_requested(attempt=2)))
    assert await state(ctx) == "funded"
    keys = [k for c, k in fake(ctx).calls if c == "charge"]
    assert keys[0] != keys[1]
    assert await published(ctx) == ["cairn.payment.failed", "cairn.payment.funded"]


def release_requested() -> MilestoneReleaseRequested:
    return MilestoneReleaseRequested(
        **{**MILESTONE, "state": "releasing"},
        trigger="customer",
        platform_fee_bps=1_000,
        freelancer_id="fr",
    )


async def test_release_refused_by_stripe_waits_for_payouts(ctx: PaymentsContext) -> None:
    await with_card(ctx)
    await funding.fund_milestone(ctx, envelope(funding_requested()))
    fake(ctx).fail_next["transfer_before"] = StripeRefused("account cannot receive transfers")
    await movements.release_milestone(ctx, envelope(release_requested()))
    assert await state(ctx) == "release_pending"
    assert (await published(ctx))[-1] == "cairn.payment.release_pending"


async def test_release_unknown_outcome_then_found_by_transfer_group(ctx: PaymentsContext) -> None:
    await with_card(ctx)
    await funding.fund_milestone(ctx, envelope(funding_requested()))
    fake(ctx).fail_next["transfer"] = StripeUnknownOutcome("timeout after transfer")
    await movements.release_milestone(ctx, envelope(release_requested()))
    assert await state(ctx) == "reconciling"
    await reconcile.sweep(ctx)
    assert await state(ctx) == "released"
    transfers = [c for c, _ in fake(ctx).calls if c in ("transfer", "find_transfer")]
    assert transfers == ["transfer", "find_transfer"]
    async with ctx.db.transaction() as s:
        books = dict(((a, b) for a, _, b in await repo.balances(s, marketplace_id="mkt")))
    assert books["escrow:mst"] == 0
    assert books["freelancer_payable:fr"] == 9_000
    assert sum(books.values()) == 0


def split_ordered(to_freelancer: int = 3_000, fee_bps: int = 1_000) -> MilestoneSplitOrdered:
    return MilestoneSplitOrdered(
        **{**MILESTONE, "state": "disputed"},
        dispute_id="dsp",
        amount_to_freelancer=to_freelancer,
        amount_to_customer=MILESTONE["amount"] - to_freelancer,  # type: ignore[operator]
        platform_fee_bps=fee_bps,
        freelancer_id="fr",
    )


@pytest.mark.parametrize(
    ("operation", "order", "died_after"),
    [
        ("split", split_ordered, "refund"),
        ("split", split_ordered, "transfer"),
        ("release", release_requested, "transfer"),
    ],
    ids=["split-died-after-both-calls", "split-died-after-its-transfer", "release"],
)
async def test_a_movement_whose_worker_died_after_paying_is_booked_on_redelivery(
    ctx: PaymentsContext, operation: str, order: Any, died_after: str
) -> None:
    """Found by the chaos run: a split reached Stripe (transfer and refund, exact amounts),
    then its worker was killed before committing. The redelivered request asked Stripe
    whether the freelancer's account could receive payouts (our books still said no: its
    webhook had been lost), the lookup failed, and the split waited for payouts with
    neither object booked — the milestone never settled. A try after one that may have
    called Stripe looks its objects up first and books what Stripe has."""
    await with_card(ctx, freelancer_ready=False)
    await funding.fund_milestone(ctx, envelope(funding_requested()))
    fake(ctx).ready_accounts = {"acct_1"}  # onboarding finished; the webhook was lost
    request = envelope(order())
    handle = movements.split_milestone if operation == "split" else movements.release_milestone
    fake(ctx).fail_next[died_after] = RuntimeError("worker killed")  # after Stripe made it
    with pytest.raises(RuntimeError):
        await handle(ctx, request)
    assert await state(ctx) == "funded"  # nothing of that try was committed
    assert len(fake(ctx).transfers) == 1

    fake(ctx).ready_accounts = set()  # and the account can no longer be asked about
    fake(ctx).fail_next["payouts"] = unknown()
    await handle(ctx, request)  # the request redelivered to the restarted worker
    await reconcile.sweep(ctx)

    assert len(fake(ctx).transfers) == 1
    assert len(fake(ctx).refunds) == (1 if operation == "split" else 0)
    assert [c for c, _ in fake(ctx).calls].count("transfer") == 1, "found, not made again"
    async with ctx.db.transaction() as s:
        row = await repo.get_escrow(s, "mst")
        books = {a: b for a, _, b in await repo.balances(s, milestone_id="mst")}
    assert row is not None
    if operation == "split":
        # Its transfer was found; its refund made (or found) by its key: settled in full.
        assert row.state == "settled"
        assert (row.transferred, row.refunded) == (2_700, 7_000)
        assert (await published(ctx))[-1] == "cairn.payment.split_settled"
        assert books["freelancer_payable:fr"] == 2_700
    else:
        assert row.state == "released"
        assert row.transferred == 9_000
        assert (await published(ctx))[-1] == "cairn.payment.released"
        assert books["freelancer_payable:fr"] == 9_000
    assert "cairn.payment.release_pending" not in await published(ctx)
    assert books["escrow:mst"] == 0
    assert sum(books.values()) == 0


async def test_a_split_leaving_the_freelancer_nothing_refunds_without_their_payout_account(
    ctx: PaymentsContext,
) -> None:
    """The fee takes the freelancer's whole part: nothing is transferred, so the
    customer's refund never waits for the freelancer to set up payouts."""
    await with_card(ctx, freelancer_ready=False)
    await funding.fund_milestone(ctx, envelope(funding_requested()))
    await movements.split_milestone(ctx, envelope(split_ordered(to_freelancer=100, fee_bps=10_000)))
    async with ctx.db.transaction() as s:
        row = await repo.get_escrow(s, "mst")
    assert row is not None
    assert (row.state, row.transferred, row.refunded) == ("settled", 0, 9_900)
    assert fake(ctx).transfers == {}
    assert [(a, c) for _, a, c in fake(ctx).refunds.values()] == [(9_900, "ch_1")]
    assert "payouts_enabled" not in [c for c, _ in fake(ctx).calls]
    assert (await published(ctx))[-1] == "cairn.payment.split_settled"


def test_an_owed_call_grace_a_stripe_call_could_outlast_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="owed_call_grace_s"):
        Settings(
            database_url="sqlite+aiosqlite://",
            jwt_secret="x" * 32,
            stripe_request_timeout_s=30,
            owed_call_grace_s=20,
        )


async def test_a_declined_card_error_carries_a_customer_sentence() -> None:
    err = StripeDeclined("Your card was declined.", code="card_declined")
    assert "declined" in err.message


async def abandoned_attempt_succeeds_late(ctx: PaymentsContext) -> str:
    """The customer left 3-D Secure open, paid again with another card, and cancelling the
    first PaymentIntent failed; then they finish 3-D Secure. The escrow is already funded
    by the second attempt. Stores the late success's webhook as ``evt_late``; returns the
    late charge."""
    await with_card(ctx)
    fake(ctx).charge_result = "requires_action"
    await funding.fund_milestone(ctx, envelope(funding_requested(attempt=1)))
    assert await state(ctx) == "action_required"
    fake(ctx).charge_result = "succeeded"
    fake(ctx).fail_next["cancel"] = StripeUnknownOutcome("timed out")
    await funding.fund_milestone(ctx, envelope(funding_requested(attempt=2)))
    assert await state(ctx) == "funded"

    late_charge = fake(ctx).authenticate("pi_1", 10_000)
    assert late_charge is not None
    payload = {
        "id": "evt_late",
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": "pi_1",
                "status": "succeeded",
                "latest_charge": late_charge,
                "amount": 10_000,
                "metadata": {"milestone_id": "mst", "attempt": "1"},
            }
        },
    }
    async with ctx.db.transaction() as s:
        s.add(StripeEventRow(id="evt_late", type=payload["type"], payload=json.dumps(payload)))
    return late_charge


async def still_funded_by_the_second_charge(ctx: PaymentsContext) -> None:
    assert fake(ctx).kept_charges() == ["ch_2"]
    async with ctx.db.transaction() as s:
        row = await repo.get_escrow(s, "mst")
    assert row is not None
    assert (row.state, row.charge_id, row.charged) == ("funded", "ch_2", 10_000)


async def test_an_abandoned_attempt_succeeding_after_the_next_one_funded_is_refunded(
    ctx: PaymentsContext,
) -> None:
    """The first charge must go back, not stay as a second payment."""
    late_charge = await abandoned_attempt_succeeds_late(ctx)
    assert await webhooks.process_event(ctx, "evt_late")

    (refund,) = fake(ctx).refunds.values()
    assert (refund[1], refund[2]) == (10_000, late_charge)
    await still_funded_by_the_second_charge(ctx)


async def owed_for_a_while(ctx: PaymentsContext) -> None:
    """Age the owed operations past the grace the reconciler leaves their owner."""
    async with ctx.db.transaction() as s:
        for op in (await s.exec(select(StripeOperation))).all():
            op.updated_at -= timedelta(seconds=ctx.settings.owed_call_grace_s + 1)
            s.add(op)


@pytest.mark.parametrize("stripe_did_it", [False, True], ids=["not-made", "answer-lost"])
async def test_a_stale_refund_cut_off_after_the_webhook_is_made_once_by_the_reconciler(
    ctx: PaymentsContext, stripe_did_it: bool
) -> None:
    """The webhook that found the stale charge committed, then the refund call never came
    back (the process died, or Stripe timed out before or after making it): the event is
    processed and will not come again, so the reconciler makes the refund — exactly once."""
    late_charge = await abandoned_attempt_succeeds_late(ctx)
    fake(ctx).fail_next["refund" if stripe_did_it else "refund_before"] = unknown()
    with pytest.raises(StripeUnknownOutcome):
        await webhooks.process_event(ctx, "evt_late")
    assert len(fake(ctx).refunds) == int(stripe_did_it)
    assert not await webhooks.process_event(ctx, "evt_late")  # processed: never comes again

    await reconcile.sweep(ctx)  # the owner may still be making it: left alone
    assert len(fake(ctx).refunds) == int(stripe_did_it)
    await owed_for_a_while(ctx)
    await reconcile.sweep(ctx)
    await reconcile.sweep(ctx)

    (refund,) = fake(ctx).refunds.values()
    assert (refund[1], refund[2]) == (10_000, late_charge)
    assert [c for c, _ in fake(ctx).calls].count("refund") == 2 - int(stripe_did_it)
    async with ctx.db.transaction() as s:
        op = await s.get(StripeOperation, "cairn:stale-refund:pi_1")
    assert op is not None
    assert (op.status, op.stripe_object_id) == ("succeeded", refund[0])
    await still_funded_by_the_second_charge(ctx)


async def test_an_owed_refund_stripe_refuses_is_left_to_operators_not_retried(
    ctx: PaymentsContext,
) -> None:
    await abandoned_attempt_succeeds_late(ctx)
    fake(ctx).fail_next["refund_before"] = StripeRefused(
        "Charge ch_pi_1 has already been refunded."
    )
    assert await webhooks.process_event(ctx, "evt_late")
    await owed_for_a_while(ctx)
    await reconcile.sweep(ctx)
    assert fake(ctx).refunds == {}
    assert [c for c, _ in fake(ctx).calls].count("refund") == 1
    async with ctx.db.transaction() as s:
        op = await s.get(StripeOperation, "cairn:stale-refund:pi_1")
    assert op is not None
    assert (op.status, op.error) == ("failed", "Charge ch_pi_1 has already been refunded.")


async def test_one_waiting_release_that_fails_does_not_hold_up_the_others(
    ctx: PaymentsContext,
) -> None:
    await with_card(ctx, freelancer_ready=False)
    ids = ["mst", "mst2"]
    for milestone_id in ids:
        request = funding_requested().model_copy(update={"milestone_id": milestone_id})
        await funding.fund_milestone(ctx, envelope(request))
        release = release_requested().model_copy(update={"milestone_id": milestone_id})
        await movements.release_milestone(ctx, envelope(release))
    assert [await state(ctx, m) for m in ids] == ["release_pending", "release_pending"]

    async with ctx.db.transaction() as s:
        profile = await repo.get_profile(s, "mkt", "fr", "freelancer")
        assert profile is not None
        profile.payouts_enabled = True
        s.add(profile)
    fake(ctx).fail_next["find"] = RuntimeError("a bug while resuming the first one")
    assert await movements.resume_waiting_releases(ctx, "mkt", "fr") == 1
    assert [await state(ctx, m) for m in ids] == ["release_pending", "released"]
    # The next pass (the reconciler's) carries the first one out too.
    assert await movements.resume_waiting_releases(ctx, "mkt", "fr") == 1
    assert [await state(ctx, m) for m in ids] == ["released", "released"]
