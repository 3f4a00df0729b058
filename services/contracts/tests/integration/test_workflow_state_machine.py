"""A hypothesis state machine over the REAL service layer on PostgreSQL: random
marketplace settings, then random commands by random actors (the parties, an operator,
strangers, another marketplace's operator), payment outcomes delivered through the
consumer handlers (current, old and redelivered), and timer passes on a moving clock.

After every step it checks what a user would notice:
- no milestone is paid unless it was approved (by the freelancer where the settings ask
  for it) in the version that was paid;
- nothing is edited or deleted once paid;
- released + refunded never exceeds the amount, and a milestone is funded at most once;
- every transition is one the workflow table allows, the history's from→to chain is
  contiguous and ends at the current state and version, and replaying ``decide()`` over
  the recorded commands from creation reaches the same state;
- a refused command changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from cairn_chassis.db import Database
from cairn_chassis.outbox import OutboxMessage
from cairn_contracts.adapters.repository import contract_from_rows
from cairn_contracts.adapters.tables import ContractRow, HistoryRow, MilestoneRow
from cairn_contracts.adapters.unit_of_work import SqlUnitOfWork
from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.domain.model import Caller
from cairn_contracts.domain.rules import next_state as decide
from cairn_contracts.domain.states import PAID, Command, Context, WorkflowSettings
from cairn_contracts.entrypoints.consumers import build_router
from cairn_contracts.service import contracts, disputes, marketplaces, milestones, timers
from cairn_schemas.base import Event, Party
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import (
    PaymentActionRequired,
    PaymentFailed,
    PaymentFunded,
    PaymentRefunded,
    PaymentReleased,
    PaymentSplitSettled,
)
from cairn_schemas.settings import MarketplaceSettings
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import col, select

from .conftest import fresh_database
from .helpers import branding

pytestmark = pytest.mark.integration
T = TypeVar("T")

SUB_OPTIONS = [
    {"milestone_creator": "freelancer"},
    {"milestone_creator": "customer"},
    {"milestone_creator": "customer", "skip_freelancer_approval": True},
    {"milestone_creator": "customer", "allow_delete_until_paid": True},
    {"milestone_creator": "customer", "charge_on_freelancer_approval": True},
    {
        "milestone_creator": "customer",
        "skip_freelancer_approval": True,
        "allow_delete_until_paid": True,
    },
    {
        "milestone_creator": "customer",
        "allow_delete_until_paid": True,
        "charge_on_freelancer_approval": True,
    },
]
# The parties act most often (so milestones get far), everyone else now and then.
ACTORS = [
    *["customer", "freelancer"] * 3,
    "operator",
    "stranger",
    "foreign_operator",
]
PICK = st.integers(min_value=0, max_value=2)
ACTOR = st.sampled_from(ACTORS)
MONEY_ORDERS = {
    "cairn.milestone.release_requested",
    "cairn.milestone.refund_ordered",
    "cairn.milestone.split_ordered",
}
CLEARS_REFUND_REQUEST = {
    Command.ACCEPT_REFUND_REQUEST,
    Command.DECLINE_REFUND_REQUEST,
    Command.REFUND,
    Command.REFUND_DEADLINE,
    Command.DISPUTE,
    Command.RELEASE,
    Command.AUTO_RELEASE,
    Command.HOLDING_LIMIT,
}


class Observation:
    """One consistent read of a contract and everything hanging off it."""

    def __init__(
        self,
        contract: ContractRow,
        milestones: list[MilestoneRow],
        history: list[HistoryRow],
        outbox: list[OutboxMessage],
    ) -> None:
        self.contract = contract
        self.milestones = milestones
        self.history = history
        self.events = [
            {"type": r.event_type, "event_id": r.event_id, **json.loads(r.payload)} for r in outbox
        ]
        self.footprint = (
            tuple((m.id, m.version, m.state) for m in milestones),
            len(outbox),
            len(history),
            contract.state,
        )


class Runner:
    """One event loop and one database handle for the whole machine run."""

    loop: asyncio.AbstractEventLoop
    db: Database

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)  # type: ignore[arg-type]


RUNNER = Runner()
REACHED: set[str] = set()  # every (command -> state) the run went through


class WorkflowMachine(RuleBasedStateMachine):
    """One contract per example, driven by random commands."""

    def __init__(self) -> None:
        super().__init__()
        self.db = RUNNER.db
        self.router = build_router(self.db)
        self.milestones: list[str] = []
        self.paid_snapshot: dict[str, tuple[str, str, int]] = {}
        self.clock = datetime.now(UTC)
        self.last_envelope: Envelope[Any] | None = None
        self.last_footprint: tuple[Any, ...] = ()

    # --- set-up -------------------------------------------------------------------------------

    @initialize(
        options=st.sampled_from(SUB_OPTIONS),
        auto_release=st.sampled_from([None, 1, 3]),
        refund_days=st.sampled_from([1, 3]),
        fallback=st.sampled_from(["release", "refund"]),
        us=st.booleans(),
        fee=st.sampled_from([0, 250, 1000]),
    )
    def a_proposal(
        self,
        options: dict[str, Any],
        auto_release: int | None,
        refund_days: int,
        fallback: str,
        us: bool,
        fee: int,
    ) -> None:
        mkt = f"mkt_{uuid.uuid4().hex[:10]}"
        self.callers = {
            "customer": Caller(f"cus_{uuid.uuid4().hex[:8]}", mkt, "customer"),
            "freelancer": Caller(f"fre_{uuid.uuid4().hex[:8]}", mkt, "freelancer"),
            "operator": Caller("op", mkt, "operator"),
            "stranger": Caller(f"cus_{uuid.uuid4().hex[:8]}", mkt, "customer"),
            "foreign_operator": Caller("op", f"{mkt}_other", "operator"),
        }
        s = MarketplaceSettings(
            **options,
            currency="USD",
            platform_fee_bps=fee,
            auto_release_after_days=auto_release,
            refund_response_days=refund_days,
            holding_limit_fallback=fallback,
            branding=branding(),
        )
        self.settings = s
        c, f = self.callers["customer"], self.callers["freelancer"]
        RUNNER.run(marketplaces.put_settings(self.uow(), self.callers["operator"], mkt, s))
        job = RUNNER.run(contracts.post_job(self.uow(), c, self.contact(c), "Job", ""))
        contract = RUNNER.run(
            contracts.submit_proposal(
                self.uow(), f, self.contact(f), job.id, "Hi", "US" if us else None
            )
        )
        self.contract_id = contract.id
        creator = self.callers["customer" if s.milestone_creator == "customer" else "freelancer"]
        first = RUNNER.run(milestones.create(self.uow(), creator, contract.id, "T", "D", 100_00))
        self.milestones.append(first.id)

    # --- helpers ------------------------------------------------------------------------------

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.db)

    @staticmethod
    def contact(caller: Caller) -> Party:
        return Party(user_id=caller.user_id, email=f"{caller.role}@example.test", name="P")

    def pick(self, i: int) -> str:
        return self.milestones[i % len(self.milestones)]

    def row(self, milestone_id: str) -> MilestoneRow:
        async def load() -> MilestoneRow:
            async with self.db.transaction() as session:
                return (
                    await session.exec(select(MilestoneRow).where(MilestoneRow.id == milestone_id))
                ).one()

        return RUNNER.run(load())

    def footprint(self) -> tuple[Any, ...]:
        """Everything a command could change on this contract, from one observation."""
        return self.observe().footprint

    def attempt(self, coro: Awaitable[Any]) -> Any:
        """Run a command; a refusal must leave everything as it was."""
        before = self.last_footprint  # as the invariant saw it after the previous step
        try:
            return RUNNER.run(coro)
        except (Refused, NotFound) as exc:
            refusal = exc
        changed = self.footprint() != before
        assert not changed, f"refused {refusal!r} but something changed"
        return None

    def deliver(self, event: Event, event_id: str | None = None) -> None:
        envelope = Envelope(
            id=event_id or str(uuid.uuid4()),
            type=event.event_type,
            source="/cairn/payments",
            time=datetime.now(UTC),
            subject=None,
            event=event,
        )
        self.last_envelope = envelope
        RUNNER.run(self.router.handlers[event.event_type](envelope))

    def money(self, m: MilestoneRow) -> dict[str, Any]:
        return {
            "marketplace_id": m.marketplace_id,
            "contract_id": m.contract_id,
            "milestone_id": m.id,
            "amount": m.amount,
            "currency": m.currency,
        }

    # --- the parties' commands ----------------------------------------------------------------

    @precondition(lambda self: len(self.milestones) < 3)
    @rule(actor=ACTOR, amount=st.integers(min_value=1, max_value=10_000_00))
    def create(self, actor: str, amount: int) -> None:
        m = self.attempt(
            milestones.create(self.uow(), self.callers[actor], self.contract_id, "T", "D", amount)
        )
        if m is not None:
            self.milestones.append(m.id)

    @precondition(lambda self: self.milestones)
    @rule(i=PICK, actor=ACTOR, amount=st.integers(1, 10_000_00), stale=st.booleans())
    def edit(self, i: int, actor: str, amount: int, stale: bool) -> None:
        mid = self.pick(i)
        version = self.row(mid).version - (1 if stale else 0)
        self.attempt(
            milestones.edit(
                self.uow(), self.callers[actor], mid, version, {"amount": amount, "title": "E"}
            )
        )

    @precondition(lambda self: self.milestones)
    @rule(i=PICK, actor=ACTOR, stale=st.booleans())
    def approve(self, i: int, actor: str, stale: bool) -> None:
        mid = self.pick(i)
        version = self.row(mid).version - (1 if stale else 0)
        self.attempt(milestones.approve(self.uow(), self.callers[actor], mid, version))

    @precondition(lambda self: self.milestones)
    @rule(
        i=PICK,
        actor=ACTOR,
        command=st.sampled_from(
            [
                "send_for_approval",
                "delete",
                "pay",
                "complete",
                "release",
                "refund",
                "request_changes",
                "dispute",
                "request_refund",
                "accept_refund_request",
                "decline_refund_request",
            ]
        ),
    )
    def any_command(self, i: int, actor: str, command: str) -> None:
        """Any party command by anyone (most are refused: nothing may change then)."""
        caller, mid = self.callers[actor], self.pick(i)
        if command in ("request_changes", "dispute", "request_refund"):
            coro = getattr(milestones, command)(self.uow(), caller, mid, "Because")
        elif command.endswith("refund_request"):
            accept = command.startswith("accept")
            coro = milestones.answer_refund_request(self.uow(), caller, mid, accept, None)
        else:
            coro = getattr(milestones, command)(self.uow(), caller, mid)
        self.attempt(coro)

    @precondition(lambda self: self.milestones)
    @rule(
        i=PICK,
        actor=ACTOR,
        outcome=st.sampled_from(["release", "refund", "split"]),
        share=st.floats(min_value=-0.2, max_value=1.2),
    )
    def resolve(self, i: int, actor: str, outcome: str, share: float) -> None:
        m = self.row(self.pick(i))
        if m.dispute_id is None:
            return
        amount = int(m.amount * share) if outcome == "split" else None
        if amount is not None and amount < 1:
            amount = None
        self.attempt(
            disputes.resolve(
                self.uow(),
                self.callers[actor],
                m.dispute_id,
                outcome,
                amount,
                "Decided",  # type: ignore[arg-type]
            )
        )

    @rule(
        actor=ACTOR,
        command=st.sampled_from(["accept", "accept", "accept", "end", "decline", "withdraw"]),
    )
    def contract_command(self, actor: str, command: str) -> None:
        fn = getattr(contracts, command)
        args = (None,) if command in ("decline", "withdraw") else ()
        self.attempt(fn(self.uow(), self.callers[actor], self.contract_id, *args))

    def advance(self, i: int, choice: int) -> None:
        """A step the rules allow, by the right actor: keeps milestones moving deep into
        the workflow between the random (mostly refused) commands."""
        mid = self.pick(i)
        m = self.row(mid)
        c, f, op = (self.callers[r] for r in ("customer", "freelancer", "operator"))
        contract_state = self.last_footprint[3]
        options: list[Awaitable[Any]]
        if m.refund_requested and m.state in ("funded", "submitted"):
            options = [milestones.answer_refund_request(self.uow(), f, mid, choice % 2 == 0, None)]
        elif m.state in ("draft", "changes_requested"):
            options = [milestones.send_for_approval(self.uow(), c, mid)]
        elif m.state == "pending_approval":
            options = [
                milestones.approve(self.uow(), f, mid, m.version),
                milestones.approve(self.uow(), f, mid, m.version),
                milestones.request_changes(self.uow(), f, mid, "Smaller"),
            ]
        elif m.state == "approved" and contract_state == "proposal":
            options = [contracts.accept(self.uow(), c, self.contract_id)]
        elif m.state == "approved":
            options = [milestones.pay(self.uow(), c, mid)]
        elif m.state == "funding":
            self.funding_outcome(i, ["funded", "funded", "failed", "action_required"][choice], 0)
            return
        elif m.state == "funded":
            options = [
                milestones.complete(self.uow(), f, mid),
                milestones.complete(self.uow(), f, mid),
                milestones.request_refund(self.uow(), c, mid, "Please"),
                milestones.refund(self.uow(), f, mid),
            ]
        elif m.state == "submitted":
            options = [
                milestones.release(self.uow(), c, mid),
                milestones.dispute(self.uow(), c, mid, "Poor"),
                milestones.request_refund(self.uow(), c, mid, "Please"),
            ]
        elif m.state in ("releasing", "refunding"):
            self.money_outcome(i)
            return
        elif m.state == "disputed" and m.dispute_id is not None:
            outcome = ["release", "refund", "split", "split"][choice]
            share = m.amount // 3 if m.amount > 2 else None
            options = [
                disputes.resolve(
                    self.uow(),
                    op,
                    m.dispute_id,
                    outcome,
                    share,
                    "Decided",  # type: ignore[arg-type]
                )
            ]
        else:
            return
        chosen = options[choice % len(options)]
        for other in options:
            if other is not chosen:
                other.close()  # type: ignore[attr-defined]
        self.attempt(chosen)

    @precondition(lambda self: self.milestones)
    @rule(i=PICK, choice=st.integers(min_value=0, max_value=3))
    def advance_one(self, i: int, choice: int) -> None:
        self.advance(i, choice)

    @precondition(lambda self: self.milestones)
    @rule(i=PICK, choice=st.integers(min_value=0, max_value=3))
    def advance_another(self, i: int, choice: int) -> None:
        self.advance(i, choice)

    @precondition(lambda self: self.milestones)
    @rule(i=PICK, choice=st.integers(min_value=0, max_value=3))
    def advance_yet_another(self, i: int, choice: int) -> None:
        self.advance(i, choice)

    # --- the payments service and the clock ---------------------------------------------------

    @precondition(lambda self: self.milestones)
    @rule(
        i=PICK,
        outcome=st.sampled_from(["funded", "funded", "failed", "action_required"]),
        older=st.integers(min_value=0, max_value=1),
    )
    def funding_outcome(self, i: int, outcome: str, older: int) -> None:
        m = self.row(self.pick(i))
        attempt = max(1, m.funding_attempt - older)
        base = self.money(m)
        event: Event
        if outcome == "funded":
            event = PaymentFunded(**base, attempt=attempt, payment_intent_id="pi", charge_id="ch")
        elif outcome == "failed":
            event = PaymentFailed(**base, attempt=attempt, reason="Card declined")
        else:
            event = PaymentActionRequired(
                **base, attempt=attempt, payment_intent_id="pi", client_secret="sec"
            )
        self.deliver(event)

    @precondition(lambda self: self.milestones)
    @rule(i=PICK)
    def money_outcome(self, i: int) -> None:
        """Payments carries out the last money order it was given for this milestone."""
        m = self.row(self.pick(i))
        orders = [
            e for e in self.events() if e.get("milestone_id") == m.id and e["type"] in MONEY_ORDERS
        ]
        if not orders:
            return
        order = orders[-1]
        base = self.money(m)
        event: Event
        if order["type"] == "cairn.milestone.release_requested":
            fee = m.amount * order["platform_fee_bps"] // 10_000
            event = PaymentReleased(
                **base, transfer_id="tr", amount_to_freelancer=m.amount - fee, platform_fee=fee
            )
        elif order["type"] == "cairn.milestone.refund_ordered":
            event = PaymentRefunded(**base, refund_id="re", charge_id="ch")
        else:
            fee = order["amount_to_freelancer"] * order["platform_fee_bps"] // 10_000
            event = PaymentSplitSettled(
                **base,
                dispute_id=order["dispute_id"],
                transfer_id="tr",
                refund_id="re",
                amount_to_freelancer=order["amount_to_freelancer"] - fee,
                platform_fee=fee,
                amount_refunded=order["amount_to_customer"],
            )
        self.deliver(event)

    @precondition(lambda self: self.last_envelope is not None)
    @rule()
    def redeliver(self) -> None:
        """Kafka delivers the last outcome again: nothing changes."""
        assert self.last_envelope is not None
        before = self.last_footprint
        RUNNER.run(self.router.handlers[self.last_envelope.type](self.last_envelope))
        assert self.footprint() == before

    @rule(days=st.floats(min_value=0.1, max_value=120))
    def time_passes(self, days: float) -> None:
        self.clock += timedelta(days=days)
        RUNNER.run(timers.run_due(self.db, self.clock, reminder_before=timedelta(days=2)))

    # --- what must always hold ----------------------------------------------------------------

    def events(self) -> list[dict[str, Any]]:
        return self.observe().events

    def observe(self) -> Observation:
        """The contract, its milestones, their history and its outgoing events, read in
        one transaction."""

        async def load() -> Observation:
            async with self.db.transaction() as session:
                contract = (
                    await session.exec(
                        select(ContractRow).where(ContractRow.id == self.contract_id)
                    )
                ).one()
                ms = (
                    await session.exec(
                        select(MilestoneRow)
                        .where(MilestoneRow.contract_id == self.contract_id)
                        .order_by(col(MilestoneRow.id))
                    )
                ).all()
                rows = (
                    await session.exec(
                        select(HistoryRow)
                        .where(HistoryRow.contract_id == self.contract_id)
                        .order_by(col(HistoryRow.id))
                    )
                ).all()
                outbox = (
                    await session.exec(
                        select(OutboxMessage)
                        .where(OutboxMessage.key == self.contract_id)
                        .order_by(col(OutboxMessage.id))
                    )
                ).all()
            return Observation(contract, list(ms), list(rows), list(outbox))

        return RUNNER.run(load())

    @invariant()
    def the_workflow_holds(self) -> None:
        if not hasattr(self, "contract_id"):
            return
        seen = self.observe()
        self.last_footprint = seen.footprint
        contract, ms, events = seen.contract, seen.milestones, seen.events
        history: dict[str, list[HistoryRow]] = {m.id: [] for m in ms}
        for h in seen.history:
            history[h.milestone_id].append(h)
        event_ids = {e["event_id"] for e in events}
        rules_settings = contract_from_rows(contract, []).workflow
        for m in ms:
            rows = history[m.id]
            REACHED.update(h.to_state for h in rows)
            self.replays_to_current_state(contract, rules_settings, m, rows)
            assert all(h.event_id in event_ids for h in rows), "history names unknown events"
            self.paid_only_when_approved(rules_settings, m, rows)
            self.unchanged_once_paid(m, rows)
            self.money_adds_up(m, [e for e in events if e.get("milestone_id") == m.id])

    def replays_to_current_state(
        self,
        contract: ContractRow,
        s: WorkflowSettings,
        m: MilestoneRow,
        rows: list[HistoryRow],
    ) -> None:
        assert rows, "a milestone without history"
        state: Any = None
        version = 0
        refund_requested = split_ordered = False
        for h in rows:
            assert h.from_state == state, f"history jumps from {state} to {h.from_state}"
            assert h.version > version, "versions must grow"
            if h.command == "payment_action_required":
                assert h.from_state == h.to_state == "funding"
            else:
                command = Command(h.command)
                ctx = Context(
                    state=state,
                    contract=self.contract_state_at(contract, h.at),
                    settings=s,
                    actor=h.actor_role,  # type: ignore[arg-type]
                    refund_requested=refund_requested,
                    split_ordered=split_ordered,
                )
                assert decide(command, ctx) == h.to_state, f"{h.command} from {state}"
                split_ordered = split_ordered or command == Command.RESOLVE_SPLIT
                if command == Command.REQUEST_REFUND:
                    refund_requested = True
                elif command in CLEARS_REFUND_REQUEST:
                    refund_requested = False
            state, version = h.to_state, h.version
        assert (state, version) == (m.state, m.version)
        assert refund_requested == m.refund_requested

    @staticmethod
    def contract_state_at(contract: ContractRow, at: datetime) -> str:
        if contract.started_at is None or at < contract.started_at:
            if contract.ended_at is not None and at >= contract.ended_at:
                return contract.state  # declined or withdrawn
            return "proposal"
        if contract.ended_at is not None and at >= contract.ended_at:
            return "ended"
        return "live"

    def paid_only_when_approved(
        self, s: WorkflowSettings, m: MilestoneRow, rows: list[HistoryRow]
    ) -> None:
        paid_at = next((n for n, h in enumerate(rows) if h.to_state == "funding"), None)
        if paid_at is None:
            return
        before = rows[: paid_at + 1]
        approvals = [n for n, h in enumerate(before) if h.command == "approve"]
        if s.needs_freelancer_approval:
            assert approvals, "paid without the freelancer's approval"
            assert all(h.command != "edit" for h in before[approvals[-1] :]), (
                "paid a version the freelancer did not approve"
            )
        else:
            assert rows[0].to_state == "approved", "paid a milestone that was never approved"

    def unchanged_once_paid(self, m: MilestoneRow, rows: list[HistoryRow]) -> None:
        # A payment that fails sends the milestone back to "approved" (unpaid, editable
        # again); once the money is held it never goes back.
        assert all(h.from_state not in PAID for h in rows if h.command in ("edit", "delete")), (
            "edited or deleted while paid"
        )
        held_at = next((n for n, h in enumerate(rows) if h.to_state in PAID - {"funding"}), None)
        if held_at is None:
            assert m.id not in self.paid_snapshot
            return
        assert m.state != "deleted"
        content = (m.title, m.description, m.amount)
        assert self.paid_snapshot.setdefault(m.id, content) == content, "edited once paid"

    def money_adds_up(self, m: MilestoneRow, events: list[dict[str, Any]]) -> None:
        ordered = 0
        for e in events:
            if e["type"] in ("cairn.milestone.release_requested", "cairn.milestone.refund_ordered"):
                ordered += e["amount"]
            elif e["type"] == "cairn.milestone.split_ordered":
                assert e["amount_to_freelancer"] + e["amount_to_customer"] == m.amount
                ordered += m.amount
        assert ordered <= m.amount, "more money ordered out of escrow than went in"
        done = sum(
            e["amount_to_freelancer"] + e["platform_fee"]
            if e["type"] == "cairn.milestone.released"
            else e["amount"]
            if e["type"] == "cairn.milestone.refunded"
            else e["amount_to_freelancer"] + e["platform_fee"] + e["amount_refunded"]
            if e["type"] == "cairn.milestone.settled"
            else 0
            for e in events
        )
        assert done <= m.amount, "released + refunded exceeds the amount"
        funded = [e for e in events if e["type"] == "cairn.milestone.funded"]
        assert len(funded) <= 1, "funded twice"
        if ordered:
            assert funded, "money ordered out of an escrow that was never funded"
        # Whatever is being charged or held is the amount the milestone shows. (A milestone
        # whose payment failed is unpaid again and may be edited: its last charge request
        # then names the old amount until it is paid again.)
        if m.state in PAID:
            charged = [e for e in events if e["type"] == "cairn.milestone.funding_requested"]
            assert charged, "paid without a charge request"
            assert charged[-1]["amount"] == m.amount, "escrow holds another amount"


@pytest.fixture(scope="module")
def machine_database_url(postgres_admin_url: str) -> Iterator[str]:
    """Its own database: the machine's timer passes sweep every due milestone."""
    yield from fresh_database(postgres_admin_url)


# ~10 s on a quiet machine; a generous ceiling for a busy two-core CI box.
@pytest.mark.timeout(900)
def test_the_workflow_holds_under_random_commands(machine_database_url: str) -> None:
    RUNNER.loop = asyncio.new_event_loop()
    RUNNER.db = Database(machine_database_url, pool_size=4)
    try:
        run_state_machine_as_test(
            WorkflowMachine,
            settings=settings(
                max_examples=int(os.environ.get("CONTRACTS_MACHINE_EXAMPLES", "30")),
                stateful_step_count=20,
                deadline=None,
                # No shrinking: against a database it takes minutes; a failure reports the
                # full sequence of steps, which replays as it is.
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                database=None,
            ),
        )
    finally:
        RUNNER.run(RUNNER.db.dispose())
        RUNNER.loop.close()
    # The invariants above only mean something if milestones really got paid and paid out.
    assert {"funding", "funded"} <= REACHED, sorted(REACHED)
