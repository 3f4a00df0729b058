"""Property test through the use cases (inbox, escrow, ledger, outbox) on SQLite with a
fake Stripe: any sequence of funding, release, refund, split, chargeback, duplicated
deliveries, unknown outcomes and reconciler passes keeps the books balanced, never makes
an escrow negative, never pays out more than was charged, and ends agreeing with Stripe."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from cairn_chassis.db import Database
from cairn_payments.adapters import repository as repo
from cairn_payments.adapters.stripe_gateway import StripeGateway
from cairn_payments.adapters.tables import PaymentProfile, StripeEventRow
from cairn_payments.config import Settings
from cairn_payments.service import funding, movements, reconcile, webhooks
from cairn_payments.service.context import PaymentsContext
from cairn_schemas.base import Actor, Event
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import (
    MilestoneFundingRequested,
    MilestoneRefundOrdered,
    MilestoneReleaseRequested,
    MilestoneSplitOrdered,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from sqlmodel import SQLModel

from .fake_stripe import FakeStripe, unknown


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A folder for throw-away SQLite files, in memory-backed /dev/shm when there is one."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="cairn-payments-") as folder:
        yield Path(folder)


FAULTS = (
    "charge",
    "charge_before",
    "transfer",
    "transfer_before",
    "refund",
    "refund_before",
    "cancel",
)

OPS = st.one_of(
    st.tuples(st.just("fund"), st.sampled_from(["succeeded", "failed", "requires_action"])),
    st.tuples(st.just("authenticate"), st.booleans()),
    st.tuples(st.just("late_authenticate"), st.just(0)),
    st.tuples(st.just("release"), st.integers(0, 3_000)),
    st.tuples(st.just("refund"), st.just(0)),
    st.tuples(st.just("split"), st.integers(1, 99)),
    st.tuples(st.just("chargeback"), st.integers(1, 200_000)),
    st.tuples(st.just("redeliver"), st.integers(0, 1_000)),
    st.tuples(st.just("unknown"), st.sampled_from(FAULTS)),
    st.tuples(st.just("lookup_fails"), st.just(0)),
    st.tuples(st.just("reconcile"), st.just(0)),
    st.tuples(st.just("payouts"), st.booleans()),
)


def _milestone(amount: int, state: str) -> dict[str, Any]:
    return {
        "marketplace_id": "mkt",
        "contract_id": "ctr",
        "milestone_id": "mst",
        "title": "Wireframes",
        "amount": amount,
        "currency": "EUR",
        "version": 1,
        "state": state,
        "actor": Actor(user_id="cu", role="customer"),
    }


def _envelope(event: Event) -> Envelope[Any]:
    return Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="/test",
        time=datetime.now(UTC),
        subject=None,
        event=event,
    )


class World:
    """One milestone's life through the use cases."""

    def __init__(self, ctx: PaymentsContext, amount: int) -> None:
        self.ctx = ctx
        self.fake = cast(FakeStripe, ctx.gateway)
        self.amount = amount
        self.attempt = 1
        self.sent: list[Envelope[Any]] = []
        self.disputes = 0

    async def deliver(self, env: Envelope[Any]) -> None:
        event = env.event
        if isinstance(event, MilestoneFundingRequested):
            await funding.fund_milestone(self.ctx, env)
        elif isinstance(event, MilestoneReleaseRequested):
            await movements.release_milestone(self.ctx, env)
        elif isinstance(event, MilestoneRefundOrdered):
            await movements.refund_milestone(self.ctx, env)
        elif isinstance(event, MilestoneSplitOrdered):
            await movements.split_milestone(self.ctx, env)

    async def send(self, event: Event) -> None:
        env = _envelope(event)
        self.sent.append(env)
        await self.deliver(env)

    async def webhook(self, event_type: str, obj: dict[str, Any], event_id: str) -> None:
        """Stripe delivers an event: stored, then processed through the inbox."""
        payload = {"id": event_id, "type": event_type, "data": {"object": obj}}
        async with self.ctx.db.transaction() as s:
            if await s.get(StripeEventRow, event_id) is None:
                s.add(StripeEventRow(id=event_id, type=event_type, payload=json.dumps(payload)))
        with contextlib.suppress(webhooks.NotYet):
            await webhooks.process_event(self.ctx, event_id)

    async def escrow(self) -> Any:
        async with self.ctx.db.transaction() as s:
            return await repo.get_escrow(s, "mst")

    async def step(self, op: str, arg: Any) -> None:
        a = self.amount
        if op == "fund":
            row = await self.escrow()
            if row is not None and row.state in ("failed", "action_required"):
                self.attempt += 1
            self.fake.charge_result = arg
            await self.send(
                MilestoneFundingRequested(
                    **_milestone(a, "funding"),
                    customer_id="cu",
                    freelancer_id="fr",
                    platform_fee_bps=1_000,
                    attempt=self.attempt,
                )
            )
        elif op == "release":
            await self.send(
                MilestoneReleaseRequested(
                    **_milestone(a, "releasing"),
                    trigger="customer",
                    platform_fee_bps=arg,
                    freelancer_id="fr",
                )
            )
        elif op == "refund":
            await self.send(MilestoneRefundOrdered(**_milestone(a, "refunding"), reason="dispute"))
        elif op == "split" and a >= 2:
            to_freelancer = min(max(a * arg // 100, 1), a - 1)
            await self.send(
                MilestoneSplitOrdered(
                    **_milestone(a, "disputed"),
                    dispute_id="dsp",
                    freelancer_id="fr",
                    amount_to_freelancer=to_freelancer,
                    amount_to_customer=a - to_freelancer,
                    platform_fee_bps=1_000,
                )
            )
        elif op == "chargeback":
            row = await self.escrow()
            if row is not None and row.charge_id:
                self.disputes += 1
                dispute = {"id": f"dp_{self.disputes}", "charge": row.charge_id, "amount": arg}
                await self.webhook("charge.dispute.created", dispute, f"evt_{self.disputes}")
        elif op == "authenticate":
            # payment_intent.succeeded after 3-D Secure (``arg``: also under a fresh event id).
            row = await self.escrow()
            if row is None or row.state != "action_required" or not row.payment_intent_id:
                return
            charge_id = self.fake.authenticate(row.payment_intent_id, row.amount)
            pi = {
                "id": row.payment_intent_id,
                "status": "succeeded",
                "latest_charge": charge_id or f"ch_{row.payment_intent_id[3:]}",
                "metadata": {"milestone_id": "mst", "attempt": str(row.attempt)},
            }
            for n in range(2 if arg else 1):
                await self.webhook("payment_intent.succeeded", pi, f"evt_pi_{pi['id']}_{n}")
        elif op == "late_authenticate":
            # The customer finishes 3-D Secure of an attempt they already replaced.
            row = await self.escrow()
            for key, result in list(self.fake.charges.items()):
                if row is None or result.payment_intent_id == row.payment_intent_id:
                    continue
                charge_id = self.fake.authenticate(result.payment_intent_id, row.amount)
                if charge_id is None:
                    continue
                attempt = int(key.rsplit(":", 1)[1])  # cairn:charge:<milestone>:<attempt>
                pi = {
                    "id": result.payment_intent_id,
                    "status": "succeeded",
                    "latest_charge": charge_id,
                    "amount": row.amount,
                    "metadata": {"milestone_id": "mst", "attempt": str(attempt)},
                }
                await self.webhook("payment_intent.succeeded", pi, f"evt_late_{pi['id']}")
        elif op == "redeliver" and self.sent:
            await self.deliver(self.sent[arg % len(self.sent)])
        elif op == "unknown":
            self.fake.fail_next[arg] = unknown()
        elif op == "lookup_fails":
            self.fake.fail_next["find"] = unknown()
        elif op == "reconcile":
            await reconcile.sweep(self.ctx)
        elif op == "payouts":
            async with self.ctx.db.transaction() as s:
                profile = await repo.get_profile(s, "mkt", "fr", "freelancer")
                assert profile is not None
                profile.payouts_enabled = arg
                s.add(profile)
            if arg:
                await movements.resume_waiting_releases(self.ctx, "mkt", "fr")

    async def check(self) -> None:
        async with self.ctx.db.transaction() as s:
            books = {acc: b for acc, _, b in await repo.balances(s, marketplace_id="mkt")}
            row = await repo.get_escrow(s, "mst")
        assert sum(books.values()) == 0
        charged_on_stripe = sum(self.fake.charge_amounts.values())
        assert len(self.fake.kept_charges()) <= 1, "charged twice"
        assert self.fake.money_out() <= charged_on_stripe
        if row is None:
            return
        assert row.held >= 0
        assert books.get("escrow:mst", 0) == row.held
        assert row.fee + row.transferred + row.refunded <= row.charged

    async def settle_everything(self) -> None:
        """No more faults: the reconciler brings the books and Stripe into agreement."""
        self.fake.fail_next.clear()
        await reconcile.sweep(self.ctx)
        await webhooks.process_pending(self.ctx)  # chargebacks that waited for it
        row = await self.escrow()
        if row is None:
            return
        assert row.state != "reconciling"
        with contextlib.suppress(InvalidArgument):  # outside @given (the fixed cases)
            event(f"final state: {row.state}{' (frozen)' if row.frozen else ''}")
        refunded = sum(a for _, a, _ in self.fake.refunds.values())
        transferred = sum(a for _, a, _ in self.fake.transfers.values()) - sum(
            a for _, a, _ in self.fake.reversals.values()
        )
        stale = sum(a for k, (_, a, _) in self.fake.refunds.items() if ":stale-refund:" in k)
        assert row.charged == sum(self.fake.charge_amounts.values()) - stale
        assert row.refunded == refunded - stale
        assert row.transferred == transferred


async def _run(path: Path, ops: list[tuple[str, Any]], amount: int, ready: bool) -> None:
    db_file = path / f"{uuid.uuid4().hex}.db"
    db = Database(f"sqlite+aiosqlite:///{db_file}")
    async with db.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    ctx = PaymentsContext(
        Settings(database_url=db.url, jwt_secret="x" * 32),
        db,
        cast(StripeGateway, FakeStripe()),
    )
    async with db.transaction() as s:
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
                payouts_enabled=ready,
            )
        )
    world = World(ctx, amount)
    try:
        for op, arg in ops:
            await world.step(op, arg)
            await world.check()
        await world.settle_everything()
        await world.check()
    finally:
        await db.dispose()
        for leftover in path.glob(f"{db_file.name}*"):
            leftover.unlink()


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(OPS, max_size=20),
    amount=st.integers(1, 100_000),
    ready=st.booleans(),
    start_funded=st.booleans(),
)
def test_any_sequence_of_deliveries_keeps_the_books(
    scratch: Path, ops: list[tuple[str, Any]], amount: int, ready: bool, start_funded: bool
) -> None:
    # Most interesting sequences start from held money; let half of them start there.
    prefix: list[tuple[str, Any]] = [("fund", "succeeded")] if start_funded else []
    asyncio.run(_run(scratch, prefix + ops, amount, ready))


@pytest.mark.parametrize(
    "ops",
    [
        [
            ("fund", "succeeded"),
            ("unknown", "transfer"),
            ("release", 1000),
            ("redeliver", 1),
            ("refund", 0),
            ("reconcile", 0),
        ],
        [
            ("fund", "succeeded"),
            ("release", 500),
            ("refund", 0),
            ("redeliver", 2),
            ("chargeback", 99),
        ],
        [("fund", "succeeded"), ("unknown", "refund"), ("refund", 0), ("chargeback", 1)],
        [
            ("fund", "succeeded"),
            ("unknown", "refund"),
            ("refund", 0),
            ("lookup_fails", 0),
            ("chargeback", 1),
            ("reconcile", 0),
        ],
        [
            ("fund", "failed"),
            ("fund", "succeeded"),
            ("redeliver", 0),
            ("split", 40),
            ("redeliver", 2),
        ],
    ],
)
def test_known_tricky_sequences(scratch: Path, ops: list[tuple[str, Any]]) -> None:
    asyncio.run(_run(scratch, ops, 10_000, True))
