"""Every row of the workflow table, run through its use case on a fake unit of work (no
database): the handler loads the aggregate, the aggregate applies the row, and commit
writes the row's events and one history row. Plus the use cases' own rules around the
table (versions, attempts, charge-on-approval, visibility, the actions a front end gets)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from cairn_contracts.domain import rules
from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.domain.model import Contract, Milestone
from cairn_contracts.domain.records import Job
from cairn_contracts.domain.states import Command, Context, ContractState
from cairn_contracts.service import (
    contracts,
    disputes,
    milestones,
    payment_outcomes,
    timers,
)
from cairn_schemas.base import Party

from .fakes import (
    CALLERS,
    CUSTOMER,
    FREELANCER,
    MARKETPLACE,
    START,
    FakeUnitOfWork,
    a_contract,
    a_milestone,
    marketplace_settings,
)

C = Command
MODES: list[dict[str, Any]] = [
    {},
    {"milestone_creator": "customer"},
    {"milestone_creator": "customer", "skip_freelancer_approval": True},
    {"milestone_creator": "customer", "allow_delete_until_paid": True},
    {"milestone_creator": "customer", "charge_on_freelancer_approval": True},
    {"holding_limit_fallback": "release"},
]
Run = Callable[[FakeUnitOfWork, Contract, Milestone | None], Awaitable[Any]]


def _actor(row: rules.Row, options: dict[str, Any]) -> str:
    if row.actor == rules.CREATOR:
        return a_contract(**options).workflow.creator
    return "customer" if row.actor == rules.PARTY else row.actor


def situation(row: rules.Row) -> tuple[dict[str, Any], ContractState, str | None, dict[str, bool]]:
    """Settings, contract state, milestone state and flags under which ``row`` applies."""
    flags = [
        dict(zip(("refund_requested", "split_ordered", "money_in_flight"), bits, strict=True))
        for bits in itertools.product([False, True], repeat=3)
    ]
    sources: list[str | None] = sorted(row.source) if row.source else [None]
    for options, contract, state, flag in itertools.product(
        MODES, sorted(row.contract), sources, flags
    ):
        workflow = a_contract(**options).workflow
        ctx = Context(state, contract, workflow, _actor(row, options), **flag)  # type: ignore[arg-type]
        try:
            if rules.decide(row.command, ctx) is row:
                return options, contract, state, flag
        except Refused:
            continue
    raise AssertionError(f"no situation makes {row} apply")


def _outcome(apply: Callable[[Milestone, Any, Any], None]) -> Run:
    async def run(uow: FakeUnitOfWork, _c: Contract, m: Milestone | None) -> Any:
        assert m is not None
        return await payment_outcomes.apply(
            uow, MARKETPLACE, m.id, apply, attempt=m.funding_attempt
        )

    return run


def _timer(act: timers.Act) -> Run:
    async def run(uow: FakeUnitOfWork, _c: Contract, m: Milestone | None) -> Any:
        assert m is not None
        assert await timers.fire(uow, m.id, MARKETPLACE, act)

    return run


def _on_milestone(handler: Callable[..., Awaitable[Any]], *args: Any) -> Callable[..., Any]:
    def run(uow: FakeUnitOfWork, c: Contract, m: Milestone | None, caller: Any) -> Any:
        assert m is not None
        return handler(uow, caller, m.id, *args)

    return run


async def _resolve(uow: FakeUnitOfWork, m: Milestone | None, outcome: str) -> Any:
    assert m is not None
    assert m.dispute is not None
    split = m.amount // 3 if outcome == "split" else None
    return await disputes.resolve(uow, CALLERS["operator"], m.dispute.id, outcome, split, "Fair")  # type: ignore[arg-type]


async def _propose(uow: FakeUnitOfWork, contract: Contract) -> Any:
    uow.jobs.add(Job("job_1", MARKETPLACE, CUSTOMER.user_id, "c@acme.test", "C", "Logo", "", START))
    uow.marketplaces.versions.append(contract.settings)
    party = Party(user_id=FREELANCER.user_id, email="f@acme.test", name="F")
    return await contracts.submit_proposal(uow, FREELANCER, party, "job_1", "Hi")


def _runner(command: Command, caller: Any) -> Run:
    """How each command's use case is called."""
    by_milestone: dict[Command, Callable[..., Any]] = {
        C.EDIT: lambda u, c, m: milestones.edit(u, caller, m.id, m.version, {"amount": 7_00}),
        C.SEND_FOR_APPROVAL: _on_milestone(milestones.send_for_approval),
        C.APPROVE: lambda u, c, m: milestones.approve(u, caller, m.id, m.version),
        C.REQUEST_CHANGES: _on_milestone(milestones.request_changes, "Smaller"),
        C.DELETE: _on_milestone(milestones.delete),
        C.PAY: _on_milestone(milestones.pay),
        C.COMPLETE: _on_milestone(milestones.complete),
        C.RELEASE: _on_milestone(milestones.release),
        C.DISPUTE: _on_milestone(milestones.dispute, "Late"),
        C.REQUEST_REFUND: _on_milestone(milestones.request_refund, "Please"),
        C.ACCEPT_REFUND_REQUEST: _on_milestone(milestones.answer_refund_request, True, None),
        C.DECLINE_REFUND_REQUEST: _on_milestone(milestones.answer_refund_request, False, "No"),
        C.REFUND: _on_milestone(milestones.refund),
    }
    if command in by_milestone:
        run = by_milestone[command]
        if command in (C.EDIT, C.APPROVE):
            return run  # type: ignore[no-any-return]
        return lambda u, c, m: run(u, c, m, caller)
    others: dict[Command, Run] = {
        C.CREATE: lambda u, c, m: milestones.create(u, caller, c.id, "T", "D", 100_00),
        C.RESOLVE_RELEASE: lambda u, c, m: _resolve(u, m, "release"),
        C.RESOLVE_REFUND: lambda u, c, m: _resolve(u, m, "refund"),
        C.RESOLVE_SPLIT: lambda u, c, m: _resolve(u, m, "split"),
        C.PAYMENT_SUCCEEDED: _outcome(
            lambda m, p, now: m.payment_succeeded(
                p, now, attempt=m.funding_attempt, payment_intent_id="pi", charge_id="ch"
            )
        ),
        C.PAYMENT_FAILED: _outcome(
            lambda m, p, now: m.payment_failed(
                p, now, attempt=1, reason="Declined", failure_code=None, payment_intent_id="pi"
            )
        ),
        C.PAYMENT_ACTION_REQUIRED: _outcome(
            lambda m, p, now: m.payment_action_required(
                p, now, attempt=1, payment_intent_id="pi", client_secret="sec"
            )
        ),
        C.CHARGEBACK_OPENED: _outcome(lambda m, p, now: m.chargeback_opened(p, now, "fraud")),
        C.RELEASE_COMPLETED: _outcome(
            lambda m, p, now: m.release_completed(
                p, now, transfer_id="tr", amount_to_freelancer=450_00, platform_fee=50_00
            )
        ),
        C.REFUND_COMPLETED: _outcome(lambda m, p, now: m.refund_completed(p, now, refund_id="re")),
        C.SPLIT_COMPLETED: _outcome(
            lambda m, p, now: m.split_completed(
                p,
                now,
                amount_to_freelancer=150_00,
                platform_fee=16_66,
                amount_refunded=333_34,
                transfer_id="tr",
                refund_id="re",
                dispute_id=m.dispute_id or "dp_1",
            )
        ),
        C.AUTO_RELEASE: _timer(Milestone.auto_release),
        C.REFUND_DEADLINE: _timer(Milestone.refund_deadline),
        C.HOLDING_LIMIT: _timer(Milestone.holding_limit),
        C.SUBMIT_PROPOSAL: lambda u, c, m: _propose(u, c),
        C.ACCEPT: lambda u, c, m: contracts.accept(u, caller, c.id),
        C.DECLINE: lambda u, c, m: contracts.decline(u, caller, c.id, "No"),
        C.WITHDRAW: lambda u, c, m: contracts.withdraw(u, caller, c.id, None),
        C.END: lambda u, c, m: contracts.end(u, caller, c.id),
    }
    return others[command]


@pytest.mark.parametrize("row", rules.TABLE, ids=lambda r: f"{r.command}:{r.target}:{r.when}")
async def test_every_row_of_the_table_runs_through_its_use_case(row: rules.Row) -> None:
    options, contract_state, state, flags = situation(row)
    contract = a_contract(contract_state, **options)
    milestone = None
    if state is not None:
        split = 150_00 if flags["split_ordered"] else None
        milestone = a_milestone(
            contract, state, refund_requested=flags["refund_requested"], split_to_freelancer=split
        )
    if flags["money_in_flight"]:
        a_milestone(contract, "funded")
    uow = FakeUnitOfWork(contract)
    caller = CALLERS[_actor(row, options)]  # type: ignore[index]

    answer = await _runner(row.command, caller)(uow, contract, milestone)

    subject: Any = milestone
    if row.command in (C.CREATE, C.SUBMIT_PROPOSAL):
        subject = answer  # the new milestone, the new contract
    elif row.source is None:
        subject = contract
    assert subject.state == row.next_state(state or contract_state)
    assert [type(event) for event in uow.published] == list(row.events)
    assert [(str(h.command), h.to_state) for h in uow.history] == [
        (str(row.command), subject.state)
    ]
    assert uow.commits == 1


async def test_a_refused_command_writes_nothing() -> None:
    contract = a_contract("live", milestone_creator="customer")
    draft = a_milestone(contract, "draft")
    uow = FakeUnitOfWork(contract)
    with pytest.raises(Refused) as refused:
        await milestones.pay(uow, CUSTOMER, draft.id)
    assert refused.value.code == "milestone.not_approved"
    assert (draft.state, draft.version, uow.published, uow.commits) == ("draft", 3, [], 0)


async def test_an_edit_needs_the_current_version() -> None:
    contract = a_contract("live", milestone_creator="customer")
    draft = a_milestone(contract, "draft")
    uow = FakeUnitOfWork(contract)
    with pytest.raises(Refused, match="now version 3"):
        await milestones.edit(uow, CUSTOMER, draft.id, 2, {"amount": 1_00})
    edited = await milestones.edit(uow, CUSTOMER, draft.id, 3, {"amount": 1_00})
    assert (edited.amount, edited.version) == (1_00, 4)
    assert uow.published[0].previous_amount == 500_00  # type: ignore[attr-defined]


async def test_accepting_with_charge_on_approval_charges_every_approved_task() -> None:
    contract = a_contract(
        "proposal", milestone_creator="customer", charge_on_freelancer_approval=True
    )
    approved, draft = a_milestone(contract, "approved"), a_milestone(contract, "draft")
    uow = FakeUnitOfWork(contract)
    await contracts.accept(uow, CUSTOMER, contract.id)
    assert (contract.state, approved.state, draft.state) == ("live", "funding", "draft")
    started, charge = uow.published
    assert (started.event_type, charge.trigger) == ("cairn.contract.started", "contract_started")  # type: ignore[attr-defined]
    assert [str(h.command) for h in uow.history] == ["accept", "pay"]


async def test_an_outcome_of_an_older_attempt_changes_nothing() -> None:
    contract = a_contract("live")
    funding = a_milestone(contract, "funding", funding_attempt=2)
    uow = FakeUnitOfWork(contract)
    outcome = await payment_outcomes.apply(
        uow,
        MARKETPLACE,
        funding.id,
        lambda m, p, now: m.payment_succeeded(
            p, now, attempt=1, payment_intent_id="p", charge_id="c"
        ),
        attempt=1,
    )
    assert (outcome, funding.state, uow.published) == (None, "funding", [])


async def test_a_stranger_gets_not_found_not_forbidden() -> None:
    contract = a_contract("live")
    milestone = a_milestone(contract, "approved")
    stranger = CALLERS["customer"].__class__("cus_other", MARKETPLACE, "customer")
    with pytest.raises(NotFound):
        await milestones.pay(FakeUnitOfWork(contract), stranger, milestone.id)


def test_actions_are_what_the_table_allows_the_caller_now() -> None:
    contract = a_contract("live", milestone_creator="customer")
    draft = a_milestone(contract, "draft")
    assert draft.actions("customer") == ["edit", "delete", "send_for_approval"]
    assert draft.actions("freelancer") == []
    assert contract.actions("customer") == ["end", "add_milestone"]
    assert contract.actions("freelancer") == ["end"]  # no "Add Task" for freelancers here
    a_milestone(contract, "funded")
    assert contract.actions("customer") == ["add_milestone"]  # money in flight: no end
    assert a_contract("proposal").actions("customer") == ["accept", "decline"]
    assert a_contract("proposal").actions("freelancer") == ["withdraw", "add_milestone"]


def test_the_settings_a_contract_started_with_decide() -> None:
    contract = a_contract("live", **{"milestone_creator": "customer"})
    assert contract.settings == marketplace_settings(milestone_creator="customer")
    assert contract.workflow.creator == "customer"
