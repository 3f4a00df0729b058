"""Every rule of the workflow table (DESIGN §3), in every mode where it applies, and the
refusal each combination gets. Pure: no I/O."""

from __future__ import annotations

import pytest
from cairn_contracts.domain.errors import Refused
from cairn_contracts.domain.rules import next_state
from cairn_contracts.domain.states import (
    MILESTONE_COMMANDS,
    MOVES_MONEY,
    PAID,
    Command,
    Context,
    State,
    WorkflowSettings,
    can_end_contract,
)


def decide(command: Command, c: Context) -> str:
    """The state the table moves the milestone to."""
    return next_state(command, c)


FREELANCER_MODE = WorkflowSettings()
CUSTOMER = WorkflowSettings(milestone_creator="customer")
SKIP = WorkflowSettings(milestone_creator="customer", skip_freelancer_approval=True)
DELETE_UNTIL_PAID = WorkflowSettings(milestone_creator="customer", allow_delete_until_paid=True)
CHARGE_ON_APPROVAL = WorkflowSettings(
    milestone_creator="customer", charge_on_freelancer_approval=True
)
SKIP_AND_DELETE = WorkflowSettings(
    milestone_creator="customer", skip_freelancer_approval=True, allow_delete_until_paid=True
)
ALL_MODES = [
    FREELANCER_MODE,
    CUSTOMER,
    SKIP,
    DELETE_UNTIL_PAID,
    CHARGE_ON_APPROVAL,
    SKIP_AND_DELETE,
]
ALL_STATES: list[State] = [
    "draft",
    "pending_approval",
    "changes_requested",
    "approved",
    "funding",
    "funded",
    "submitted",
    "releasing",
    "released",
    "disputed",
    "refunding",
    "refunded",
    "settled",
    "deleted",
]


def ctx(
    state: State | None,
    actor: str,
    settings: WorkflowSettings = CUSTOMER,
    contract: str = "live",
    refund_requested: bool = False,
) -> Context:
    return Context(
        state=state,
        contract=contract,
        settings=settings,  # type: ignore[arg-type]
        actor=actor,
        refund_requested=refund_requested,
    )  # type: ignore[arg-type]


def refused(command: Command, c: Context) -> Refused:
    with pytest.raises(Refused) as info:
        decide(command, c)
    return info.value


# --- create ----------------------------------------------------------------------------------


@pytest.mark.parametrize("contract", ["proposal", "live"])
def test_freelancer_creates_approved_milestones_in_freelancer_mode(contract: str) -> None:
    assert decide(Command.CREATE, ctx(None, "freelancer", FREELANCER_MODE, contract)) == "approved"


@pytest.mark.parametrize("contract", ["proposal", "live"])
def test_customer_creates_drafts_in_customer_mode(contract: str) -> None:
    assert decide(Command.CREATE, ctx(None, "customer", CUSTOMER, contract)) == "draft"


def test_skip_approval_creates_approved_tasks() -> None:
    assert decide(Command.CREATE, ctx(None, "customer", SKIP)) == "approved"


def test_there_is_no_add_task_button_in_freelancer_mode() -> None:
    assert (
        refused(Command.CREATE, ctx(None, "customer", FREELANCER_MODE)).code
        == "setting.customer_cannot_create"
    )


def test_freelancer_cannot_create_in_customer_mode() -> None:
    assert (
        refused(Command.CREATE, ctx(None, "freelancer", CUSTOMER)).code
        == "setting.freelancer_cannot_create"
    )


@pytest.mark.parametrize("contract", ["ended", "declined", "withdrawn"])
def test_no_milestones_on_a_closed_contract(contract: str) -> None:
    assert (
        refused(Command.CREATE, ctx(None, "customer", CUSTOMER, contract)).code == "contract.closed"
    )


def test_operator_cannot_create() -> None:
    assert refused(Command.CREATE, ctx(None, "operator", CUSTOMER)).code == "auth.wrong_role"


# --- edit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["draft", "pending_approval", "changes_requested"])
def test_customer_edits_unapproved_tasks_in_place(state: State) -> None:
    assert decide(Command.EDIT, ctx(state, "customer")) == state


def test_editing_an_approved_task_sends_it_back_for_approval() -> None:
    assert decide(Command.EDIT, ctx("approved", "customer", CUSTOMER)) == "pending_approval"


def test_editing_with_skip_approval_keeps_it_approved() -> None:
    assert decide(Command.EDIT, ctx("approved", "customer", SKIP)) == "approved"


def test_freelancer_edits_own_milestone_in_freelancer_mode() -> None:
    assert decide(Command.EDIT, ctx("approved", "freelancer", FREELANCER_MODE)) == "approved"


@pytest.mark.parametrize("settings", ALL_MODES)
@pytest.mark.parametrize("state", sorted(PAID))
def test_nothing_is_edited_once_paid(settings: WorkflowSettings, state: State) -> None:
    creator = "customer" if settings.customer_mode else "freelancer"
    assert refused(Command.EDIT, ctx(state, creator, settings)).code == "milestone.already_paid"


def test_only_the_creator_edits() -> None:
    assert refused(Command.EDIT, ctx("draft", "freelancer", CUSTOMER)).code == "auth.wrong_role"
    assert (
        refused(Command.EDIT, ctx("approved", "customer", FREELANCER_MODE)).code
        == "auth.wrong_role"
    )


# --- send for approval / approve / request changes --------------------------------------------


@pytest.mark.parametrize("state", ["draft", "changes_requested"])
def test_customer_sends_task_for_approval(state: State) -> None:
    assert decide(Command.SEND_FOR_APPROVAL, ctx(state, "customer")) == "pending_approval"


@pytest.mark.parametrize("settings", [FREELANCER_MODE, SKIP])
def test_no_approval_step_without_freelancer_approval(settings: WorkflowSettings) -> None:
    assert (
        refused(Command.SEND_FOR_APPROVAL, ctx("draft", "customer", settings)).code
        == "setting.no_freelancer_approval"
    )
    assert (
        refused(Command.APPROVE, ctx("pending_approval", "freelancer", settings)).code
        == "setting.no_freelancer_approval"
    )


@pytest.mark.parametrize("contract", ["proposal", "live"])
def test_freelancer_approves_a_pending_task(contract: str) -> None:
    assert (
        decide(Command.APPROVE, ctx("pending_approval", "freelancer", CUSTOMER, contract))
        == "approved"
    )


def test_sub_option_3_charges_on_approval_of_a_live_contract() -> None:
    assert (
        decide(Command.APPROVE, ctx("pending_approval", "freelancer", CHARGE_ON_APPROVAL, "live"))
        == "funding"
    )


def test_sub_option_3_never_charges_a_proposal() -> None:
    assert (
        decide(
            Command.APPROVE, ctx("pending_approval", "freelancer", CHARGE_ON_APPROVAL, "proposal")
        )
        == "approved"
    )


@pytest.mark.parametrize("state", ["draft", "changes_requested", "approved", "funded"])
def test_approve_only_from_pending(state: State) -> None:
    assert refused(Command.APPROVE, ctx(state, "freelancer")).code == "milestone.wrong_state"


def test_customer_cannot_approve_own_task() -> None:
    assert refused(Command.APPROVE, ctx("pending_approval", "customer")).code == "auth.wrong_role"


def test_freelancer_requests_changes() -> None:
    assert (
        decide(Command.REQUEST_CHANGES, ctx("pending_approval", "freelancer"))
        == "changes_requested"
    )
    assert (
        refused(Command.REQUEST_CHANGES, ctx("draft", "freelancer")).code == "milestone.wrong_state"
    )


# --- delete -----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["draft", "pending_approval", "changes_requested"])
def test_customer_deletes_unapproved_tasks(state: State) -> None:
    assert decide(Command.DELETE, ctx(state, "customer")) == "deleted"


def test_approved_task_cannot_be_deleted_in_plain_customer_mode() -> None:
    assert (
        refused(Command.DELETE, ctx("approved", "customer", CUSTOMER)).code
        == "milestone.approved_by_freelancer"
    )


@pytest.mark.parametrize("settings", [DELETE_UNTIL_PAID, SKIP, SKIP_AND_DELETE])
def test_approved_task_deletable_with_sub_option_2_or_skip(settings: WorkflowSettings) -> None:
    assert decide(Command.DELETE, ctx("approved", "customer", settings)) == "deleted"


def test_freelancer_deletes_own_unpaid_milestone() -> None:
    assert decide(Command.DELETE, ctx("approved", "freelancer", FREELANCER_MODE)) == "deleted"


@pytest.mark.parametrize("settings", ALL_MODES)
@pytest.mark.parametrize("state", sorted(PAID))
def test_never_deleted_once_paid(settings: WorkflowSettings, state: State) -> None:
    creator = "customer" if settings.customer_mode else "freelancer"
    assert refused(Command.DELETE, ctx(state, creator, settings)).code == "milestone.already_paid"


def test_deleted_is_final() -> None:
    assert refused(Command.DELETE, ctx("deleted", "customer")).code == "milestone.deleted"


# --- pay and payment outcomes ------------------------------------------------------------------


@pytest.mark.parametrize("settings", ALL_MODES)
def test_customer_pays_an_approved_milestone_on_a_live_contract(settings: WorkflowSettings) -> None:
    assert decide(Command.PAY, ctx("approved", "customer", settings)) == "funding"


def test_cannot_pay_while_a_proposal() -> None:
    assert (
        refused(Command.PAY, ctx("approved", "customer", CUSTOMER, "proposal")).code
        == "contract.not_live"
    )


@pytest.mark.parametrize("state", ["draft", "pending_approval", "changes_requested"])
def test_only_approved_milestones_can_be_paid(state: State) -> None:
    assert refused(Command.PAY, ctx(state, "customer")).code == "milestone.not_approved"


@pytest.mark.parametrize("state", sorted(PAID))
def test_never_paid_twice(state: State) -> None:
    assert refused(Command.PAY, ctx(state, "customer")).code == "milestone.already_paid"


def test_freelancer_cannot_pay() -> None:
    assert refused(Command.PAY, ctx("approved", "freelancer")).code == "auth.wrong_role"


def test_payment_outcomes_come_only_from_payments() -> None:
    assert decide(Command.PAYMENT_SUCCEEDED, ctx("funding", "payments")) == "funded"
    assert decide(Command.PAYMENT_FAILED, ctx("funding", "payments")) == "approved"
    assert refused(Command.PAYMENT_SUCCEEDED, ctx("funding", "customer")).code == "auth.wrong_role"
    assert (
        refused(Command.PAYMENT_SUCCEEDED, ctx("funded", "payments")).code
        == "milestone.wrong_state"
    )


# --- complete, release, auto-release -----------------------------------------------------------


def test_freelancer_marks_funded_work_complete() -> None:
    assert decide(Command.COMPLETE, ctx("funded", "freelancer")) == "submitted"
    assert refused(Command.COMPLETE, ctx("approved", "freelancer")).code == "milestone.wrong_state"


@pytest.mark.parametrize("settings", ALL_MODES)
def test_customer_releases_submitted_work(settings: WorkflowSettings) -> None:
    assert decide(Command.RELEASE, ctx("submitted", "customer", settings)) == "releasing"


def test_skip_approval_releases_straight_from_funded() -> None:
    assert decide(Command.RELEASE, ctx("funded", "customer", SKIP)) == "releasing"


@pytest.mark.parametrize("settings", [FREELANCER_MODE, CUSTOMER, DELETE_UNTIL_PAID])
def test_release_from_funded_needs_submission(settings: WorkflowSettings) -> None:
    assert (
        refused(Command.RELEASE, ctx("funded", "customer", settings)).code
        == "milestone.not_submitted"
    )


def test_auto_release_fires_on_submitted_work_only() -> None:
    assert decide(Command.AUTO_RELEASE, ctx("submitted", "system")) == "releasing"
    assert refused(Command.AUTO_RELEASE, ctx("disputed", "system")).code == "milestone.wrong_state"
    assert (
        refused(Command.AUTO_RELEASE, ctx("submitted", "system", refund_requested=True)).code
        == "milestone.refund_requested"
    )


def test_release_completes_only_from_releasing() -> None:
    assert decide(Command.RELEASE_COMPLETED, ctx("releasing", "payments")) == "released"
    split = Context("releasing", "live", CUSTOMER, "payments", split_ordered=True)
    assert decide(Command.SPLIT_COMPLETED, split) == "settled"
    # An outcome that answers an order the milestone never gave is refused.
    assert refused(Command.SPLIT_COMPLETED, ctx("releasing", "payments")).code
    assert refused(Command.RELEASE_COMPLETED, split).code
    assert decide(Command.REFUND_COMPLETED, ctx("refunding", "payments")) == "refunded"


# --- disputes and refunds ----------------------------------------------------------------------


@pytest.mark.parametrize("state", ["funded", "submitted"])
def test_customer_disputes(state: State) -> None:
    assert decide(Command.DISPUTE, ctx(state, "customer")) == "disputed"


@pytest.mark.parametrize("state", ["approved", "releasing", "released", "disputed"])
def test_cannot_dispute_outside_escrow(state: State) -> None:
    assert refused(Command.DISPUTE, ctx(state, "customer")).code == "milestone.wrong_state"


def test_operator_resolves_disputes() -> None:
    assert decide(Command.RESOLVE_RELEASE, ctx("disputed", "operator")) == "releasing"
    assert decide(Command.RESOLVE_SPLIT, ctx("disputed", "operator")) == "releasing"
    assert decide(Command.RESOLVE_REFUND, ctx("disputed", "operator")) == "refunding"
    assert refused(Command.RESOLVE_RELEASE, ctx("disputed", "customer")).code == "auth.wrong_role"
    assert (
        refused(Command.RESOLVE_RELEASE, ctx("submitted", "operator")).code
        == "milestone.wrong_state"
    )


@pytest.mark.parametrize("state", ["funded", "submitted"])
def test_refund_request_flow(state: State) -> None:
    assert decide(Command.REQUEST_REFUND, ctx(state, "customer")) == state
    flagged = ctx(state, "freelancer", refund_requested=True)
    assert decide(Command.ACCEPT_REFUND_REQUEST, flagged) == "refunding"
    assert decide(Command.DECLINE_REFUND_REQUEST, flagged) == "disputed"
    assert (
        decide(Command.REFUND_DEADLINE, ctx(state, "system", refund_requested=True)) == "refunding"
    )


def test_refund_request_needs_a_request() -> None:
    assert (
        refused(Command.ACCEPT_REFUND_REQUEST, ctx("funded", "freelancer")).code
        == "milestone.no_refund_request"
    )
    assert (
        refused(Command.REFUND_DEADLINE, ctx("funded", "system")).code
        == "milestone.no_refund_request"
    )
    assert (
        refused(Command.REQUEST_REFUND, ctx("funded", "customer", refund_requested=True)).code
        == "milestone.refund_already_requested"
    )


@pytest.mark.parametrize("state", ["funded", "submitted"])
def test_freelancer_gives_the_money_back(state: State) -> None:
    assert decide(Command.REFUND, ctx(state, "freelancer")) == "refunding"
    assert refused(Command.REFUND, ctx(state, "customer")).code == "auth.wrong_role"


@pytest.mark.parametrize(
    ("fallback", "target"), [("release", "releasing"), ("refund", "refunding")]
)
def test_holding_limit_applies_the_fallback(fallback: str, target: State) -> None:
    settings = WorkflowSettings(holding_limit_fallback=fallback)  # type: ignore[arg-type]
    assert decide(Command.HOLDING_LIMIT, ctx("funded", "system", settings)) == target
    assert (
        refused(Command.HOLDING_LIMIT, ctx("disputed", "system", settings)).code
        == "milestone.wrong_state"
    )


# --- end contract --------------------------------------------------------------------------------


def test_contract_ends_only_without_money_in_flight() -> None:
    assert can_end_contract(["released", "refunded", "deleted", "approved", "draft"])
    for state in ["funding", "funded", "submitted", "releasing", "disputed", "refunding"]:
        assert not can_end_contract(["released", state])  # type: ignore[list-item]


# --- exhaustiveness ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(MILESTONE_COMMANDS - {Command.CREATE}))
@pytest.mark.parametrize("state", ALL_STATES)
def test_every_command_in_every_state_answers_a_state_or_a_refusal(
    command: Command, state: State
) -> None:
    """No combination crashes: each is a legal target state or a Refused (never a 500)."""
    for settings in ALL_MODES:
        for actor in ("customer", "freelancer", "operator", "system", "payments"):
            try:
                target = decide(command, ctx(state, actor, settings))
            except Refused as exc:
                refusal = exc
                assert refusal.code
                assert refusal.message
            else:
                assert target in ALL_STATES
                assert not (
                    state in PAID
                    and target in ("draft", "pending_approval", "changes_requested", "deleted")
                )


@pytest.mark.parametrize("command", sorted(MOVES_MONEY))
@pytest.mark.parametrize("state", ["funded", "submitted", "disputed"])
def test_a_chargeback_refuses_every_command_that_orders_money_to_move(
    command: Command, state: State
) -> None:
    for actor in ("customer", "freelancer", "operator", "system"):
        ctx = Context(
            state=state,
            contract="live",
            settings=FREELANCER_MODE,
            actor=actor,  # type: ignore[arg-type]
            refund_requested=True,
            chargeback_open=True,
        )
        with pytest.raises(Refused) as refused:
            decide(command, ctx)
        assert refused.value.code == "milestone.chargeback_open"


def test_a_chargeback_still_lets_the_freelancer_mark_the_work_complete() -> None:
    ctx = Context(
        state="funded",
        contract="live",
        settings=FREELANCER_MODE,
        actor="freelancer",
        chargeback_open=True,
    )
    assert decide(Command.COMPLETE, ctx) == "submitted"
