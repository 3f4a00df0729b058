"""The whole workflow of DESIGN §3 as one table of data, and the one function that reads it.
Each :class:`Row` says: this ``command``, by this ``actor``, from these milestone states
(``source``; None for create and the contract's own commands), while the contract is in
one of ``contract`` states, when the named predicate ``when`` holds, moves to ``target``
(:data:`SAME`: stays) and publishes ``events``. :func:`decide` returns the first row that
matches, or raises :class:`Refused` naming the most specific rule that refused. How to
read and extend the table: docs/decisions.md (decision 30).
"""

from __future__ import annotations

from dataclasses import dataclass

from cairn_schemas.base import Event
from cairn_schemas.events import (
    ContractEnded,
    ContractStarted,
    DisputeOpened,
    DisputeResolved,
    MilestoneApproved,
    MilestoneChangesRequested,
    MilestoneCreated,
    MilestoneDeleted,
    MilestoneEdited,
    MilestoneFunded,
    MilestoneFundingRequested,
    MilestonePaymentActionRequired,
    MilestonePaymentFailed,
    MilestoneRefunded,
    MilestoneRefundOrdered,
    MilestoneRefundRequestDeclined,
    MilestoneRefundRequested,
    MilestoneReleased,
    MilestoneReleaseRequested,
    MilestoneSentForApproval,
    MilestoneSettled,
    MilestoneSplitOrdered,
    MilestoneSubmitted,
    ProposalDeclined,
    ProposalSubmitted,
    ProposalWithdrawn,
)

from cairn_contracts.domain import refusals
from cairn_contracts.domain.errors import Refused
from cairn_contracts.domain.predicates import (
    APPROVED_DELETABLE,
    CHARGES_ON_APPROVAL,
    CUSTOMERS_CREATE_APPROVED,
    CUSTOMERS_CREATE_FOR_APPROVAL,
    FALLBACK_REFUND,
    FALLBACK_RELEASE,
    FIRST_REFUND_REQUEST,
    FREELANCERS_CREATE,
    NEEDS_APPROVAL,
    NO_CHARGEBACK_YET,
    NO_MONEY_IN_FLIGHT,
    NO_REFUND_REQUEST_WAITING,
    NO_SPLIT_ORDERED,
    REFUND_REQUEST_OPEN,
    SKIPS_APPROVAL,
    SPLIT_ORDERED,
    Predicate,
)
from cairn_contracts.domain.states import (
    ALL_STATES,
    CONTRACT_STATES,
    HELD,
    LIVE,
    MOVES_MONEY,
    OPEN,
    PROPOSAL,
    ActorRole,
    Command,
    Context,
    ContractState,
    State,
)

SAME = "same"
#: ``actor`` may also name a role relative to the contract.
CREATOR = "creator"  # who creates milestones under the pinned settings
PARTY = "party"  # the customer or the freelancer
ANY: frozenset[ContractState] = CONTRACT_STATES


@dataclass(frozen=True)
class Row:
    """One row of the workflow table."""

    command: Command
    actor: str
    source: frozenset[State] | None
    contract: frozenset[ContractState]
    when: Predicate | None
    target: str
    events: tuple[type[Event], ...]

    def acts(self, role: ActorRole, ctx: Context) -> bool:
        """Whether ``role`` is the actor of this row."""
        if self.actor == CREATOR:
            return role == ctx.settings.creator
        if self.actor == PARTY:
            return role in ("customer", "freelancer")
        return role == self.actor

    def next_state(self, current: str | None) -> str:
        """The state this row moves to from ``current``."""
        if self.target == SAME:
            assert current is not None
            return current
        return self.target


def _row(
    command: Command, actor: str, source: set[str] | frozenset[State] | None,
    contract: frozenset[ContractState], when: Predicate | None, target: str,
    *events: type[Event],
) -> Row:  # fmt: skip
    states = None if source is None else frozenset(source)
    return Row(command, actor, states, contract, when, target, events)  # type: ignore[arg-type]


C = Command
UNAPPROVED = {"draft", "pending_approval", "changes_requested"}
EDITABLE = {*UNAPPROVED, "approved"}

# fmt: off
TABLE: tuple[Row, ...] = (
    # command              actor         from                contract  when                     to
    _row(C.CREATE, "customer", None, OPEN, CUSTOMERS_CREATE_FOR_APPROVAL, "draft", MilestoneCreated),  # noqa: E501
    _row(C.CREATE, "customer", None, OPEN, CUSTOMERS_CREATE_APPROVED, "approved", MilestoneCreated),
    _row(C.CREATE, "freelancer", None, OPEN, FREELANCERS_CREATE, "approved", MilestoneCreated),
    _row(C.EDIT, CREATOR, {"approved"}, OPEN, NEEDS_APPROVAL, "pending_approval", MilestoneEdited),
    _row(C.EDIT, CREATOR, EDITABLE, OPEN, None, SAME, MilestoneEdited),
    _row(C.SEND_FOR_APPROVAL, "customer", {"draft", "changes_requested"}, OPEN, NEEDS_APPROVAL, "pending_approval", MilestoneSentForApproval),  # noqa: E501
    _row(C.APPROVE, "freelancer", {"pending_approval"}, LIVE, CHARGES_ON_APPROVAL, "funding", MilestoneApproved, MilestoneFundingRequested),  # noqa: E501
    _row(C.APPROVE, "freelancer", {"pending_approval"}, OPEN, NEEDS_APPROVAL, "approved", MilestoneApproved),  # noqa: E501
    _row(C.REQUEST_CHANGES, "freelancer", {"pending_approval"}, OPEN, None, "changes_requested", MilestoneChangesRequested),  # noqa: E501
    _row(C.DELETE, CREATOR, UNAPPROVED, OPEN, None, "deleted", MilestoneDeleted),
    _row(C.DELETE, CREATOR, {"approved"}, OPEN, APPROVED_DELETABLE, "deleted", MilestoneDeleted),
    # pay (also: charge-on-approval charges every approved milestone when the contract goes live)
    _row(C.PAY, "customer", {"approved"}, LIVE, None, "funding", MilestoneFundingRequested),
    _row(C.PAYMENT_SUCCEEDED, "payments", {"funding"}, ANY, None, "funded", MilestoneFunded),
    _row(C.PAYMENT_FAILED, "payments", {"funding"}, ANY, None, "approved", MilestonePaymentFailed),
    _row(C.PAYMENT_ACTION_REQUIRED, "payments", {"funding"}, ANY, None, SAME, MilestonePaymentActionRequired),  # noqa: E501
    _row(C.CHARGEBACK_OPENED, "payments", ALL_STATES, ANY, NO_CHARGEBACK_YET, SAME),
    _row(C.COMPLETE, "freelancer", {"funded"}, ANY, None, "submitted", MilestoneSubmitted),
    _row(C.RELEASE, "customer", {"submitted"}, ANY, None, "releasing", MilestoneReleaseRequested),
    _row(C.RELEASE, "customer", {"funded"}, ANY, SKIPS_APPROVAL, "releasing", MilestoneReleaseRequested),  # noqa: E501
    _row(C.AUTO_RELEASE, "system", {"submitted"}, ANY, NO_REFUND_REQUEST_WAITING, "releasing", MilestoneReleaseRequested),  # noqa: E501
    _row(C.DISPUTE, "customer", HELD, ANY, None, "disputed", DisputeOpened),
    _row(C.RESOLVE_RELEASE, "operator", {"disputed"}, ANY, None, "releasing", DisputeResolved, MilestoneReleaseRequested),  # noqa: E501
    _row(C.RESOLVE_REFUND, "operator", {"disputed"}, ANY, None, "refunding", DisputeResolved, MilestoneRefundOrdered),  # noqa: E501
    _row(C.RESOLVE_SPLIT, "operator", {"disputed"}, ANY, None, "releasing", DisputeResolved, MilestoneSplitOrdered),  # noqa: E501
    _row(C.REQUEST_REFUND, "customer", HELD, ANY, FIRST_REFUND_REQUEST, SAME, MilestoneRefundRequested),  # noqa: E501
    _row(C.ACCEPT_REFUND_REQUEST, "freelancer", HELD, ANY, REFUND_REQUEST_OPEN, "refunding", MilestoneRefundOrdered),  # noqa: E501
    _row(C.DECLINE_REFUND_REQUEST, "freelancer", HELD, ANY, REFUND_REQUEST_OPEN, "disputed", MilestoneRefundRequestDeclined, DisputeOpened),  # noqa: E501
    _row(C.REFUND_DEADLINE, "system", HELD, ANY, REFUND_REQUEST_OPEN, "refunding", MilestoneRefundOrdered),  # noqa: E501
    _row(C.REFUND, "freelancer", HELD, ANY, None, "refunding", MilestoneRefundOrdered),
    _row(C.HOLDING_LIMIT, "system", HELD, ANY, FALLBACK_RELEASE, "releasing", MilestoneReleaseRequested),  # noqa: E501
    _row(C.HOLDING_LIMIT, "system", HELD, ANY, FALLBACK_REFUND, "refunding", MilestoneRefundOrdered),  # noqa: E501
    _row(C.RELEASE_COMPLETED, "payments", {"releasing"}, ANY, NO_SPLIT_ORDERED, "released", MilestoneReleased),  # noqa: E501
    _row(C.SPLIT_COMPLETED, "payments", {"releasing"}, ANY, SPLIT_ORDERED, "settled", MilestoneSettled),  # noqa: E501
    _row(C.REFUND_COMPLETED, "payments", {"refunding"}, ANY, None, "refunded", MilestoneRefunded),
    # the contract's rows
    _row(C.SUBMIT_PROPOSAL, "freelancer", None, ANY, None, "proposal", ProposalSubmitted),
    _row(C.ACCEPT, "customer", None, PROPOSAL, None, "live", ContractStarted),
    _row(C.DECLINE, "customer", None, PROPOSAL, None, "declined", ProposalDeclined),
    _row(C.WITHDRAW, "freelancer", None, PROPOSAL, None, "withdrawn", ProposalWithdrawn),
    _row(C.END, PARTY, None, LIVE, NO_MONEY_IN_FLIGHT, "ended", ContractEnded),
)
# fmt: on

ROWS: dict[Command, tuple[Row, ...]] = {
    command: tuple(row for row in TABLE if row.command == command) for command in Command
}


def decide(command: Command, ctx: Context) -> Row:
    """The row of the table that applies, or :class:`Refused` saying which rule refused.

    Checked in this order, so the refusal is the most specific one: a chargeback freezes
    money; who acts; the contract's state; the settings; the milestone's state; its flags.
    """
    if ctx.chargeback_open and command in MOVES_MONEY:
        raise Refused(
            "milestone.chargeback_open",
            "The customer's bank opened a chargeback on this payment: the money is frozen "
            "while the marketplace's operators handle it, so nothing can be released or "
            "refunded now.",
        )
    rows = [row for row in ROWS[command] if row.acts(ctx.actor, ctx)]
    if not rows:
        raise _wrong_role(command, ctx)
    if not (on_contract := [row for row in rows if ctx.contract in row.contract]):
        raise _contract_refusal(command, rows, ctx)
    settled = [
        row for row in on_contract if row.when is None or not row.when.on_settings or row.when(ctx)
    ]
    if not settled:
        raise _predicate_refusal(on_contract[0])
    in_state = [row for row in settled if row.source is None or ctx.state in row.source]
    if not in_state:
        for other in on_contract:  # a row the settings ruled out would have applied here
            if other not in settled and other.source and ctx.state in other.source:
                raise _predicate_refusal(other)
        raise _state_refusal(command, ctx)
    for row in in_state:
        if row.when is None or row.when(ctx):
            return row
    raise _predicate_refusal(in_state[0])


def next_state(command: Command, ctx: Context) -> str:
    """The state ``command`` moves to (a milestone's, or the contract's), or Refused."""
    return decide(command, ctx).next_state(ctx.state if ctx.state is not None else ctx.contract)


def allowed(command: Command, ctx: Context) -> bool:
    """Whether ``command`` may happen now (for a front end's ``actions``)."""
    try:
        decide(command, ctx)
    except Refused:
        return False
    return True


def _wrong_role(command: Command, ctx: Context) -> Refused:
    roles: list[str] = []
    for row in ROWS[command]:
        who = {CREATOR: ctx.settings.creator, PARTY: "customer or freelancer"}.get(
            row.actor, row.actor
        )
        if who not in roles:
            roles.append(who)
    return refusals.wrong_role(roles)


def _contract_refusal(command: Command, rows: list[Row], ctx: Context) -> Refused:
    allowed_states = frozenset().union(*(row.contract for row in rows))
    return refusals.contract_state(command, allowed_states, ctx.contract)


def _predicate_refusal(row: Row) -> Refused:
    assert row.when is not None
    return Refused(row.when.refusal_code, row.when.refusal)


def _state_refusal(command: Command, ctx: Context) -> Refused:
    assert ctx.state is not None
    return refusals.milestone_state(command, ctx.state)
