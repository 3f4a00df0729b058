"""The milestone workflow of DESIGN §3 as one pure function.

``decide(command, ctx)`` answers the state a milestone moves to, or raises
:class:`Refused` naming the rule. Nothing here does I/O; the tests walk every row of the
table in every mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from cairn_contracts.domain.errors import Refused

State = Literal[
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
ContractState = Literal["proposal", "live", "ended", "declined", "withdrawn"]
ActorRole = Literal["customer", "freelancer", "operator", "system", "payments"]

UNPAID: frozenset[State] = frozenset({"draft", "pending_approval", "changes_requested", "approved"})
PAID: frozenset[State] = frozenset(
    {
        "funding",
        "funded",
        "submitted",
        "releasing",
        "released",
        "disputed",
        "refunding",
        "refunded",
        "settled",
    }
)
MONEY_IN_FLIGHT: frozenset[State] = frozenset(
    {"funding", "funded", "submitted", "releasing", "disputed", "refunding"}
)
FINAL: frozenset[State] = frozenset({"released", "refunded", "settled", "deleted"})


class Command(StrEnum):
    """Everything that can happen to a milestone."""

    CREATE = "create"
    EDIT = "edit"
    SEND_FOR_APPROVAL = "send_for_approval"
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"
    DELETE = "delete"
    PAY = "pay"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    COMPLETE = "complete"
    RELEASE = "release"
    AUTO_RELEASE = "auto_release"
    DISPUTE = "dispute"
    RESOLVE_RELEASE = "resolve_release"
    RESOLVE_REFUND = "resolve_refund"
    RESOLVE_SPLIT = "resolve_split"
    REQUEST_REFUND = "request_refund"
    ACCEPT_REFUND_REQUEST = "accept_refund_request"
    DECLINE_REFUND_REQUEST = "decline_refund_request"
    REFUND_DEADLINE = "refund_deadline"
    REFUND = "refund"
    HOLDING_LIMIT = "holding_limit"
    RELEASE_COMPLETED = "release_completed"
    REFUND_COMPLETED = "refund_completed"
    SPLIT_COMPLETED = "split_completed"


@dataclass(frozen=True)
class WorkflowSettings:
    """The settings the rules read, as pinned on the contract."""

    milestone_creator: Literal["freelancer", "customer"] = "freelancer"
    skip_freelancer_approval: bool = False
    allow_delete_until_paid: bool = False
    charge_on_freelancer_approval: bool = False
    holding_limit_fallback: Literal["release", "refund"] = "refund"

    @property
    def customer_mode(self) -> bool:
        """Customers create milestones ("Add Task")."""
        return self.milestone_creator == "customer"

    @property
    def needs_freelancer_approval(self) -> bool:
        """Customer-created milestones go to the freelancer for approval."""
        return self.customer_mode and not self.skip_freelancer_approval


@dataclass(frozen=True)
class Context:
    """What the rules may look at."""

    state: State | None  # None for create
    contract: ContractState
    settings: WorkflowSettings
    actor: ActorRole
    refund_requested: bool = False
    chargeback_open: bool = False


# Commands that order money to move (payments would refuse them on a frozen escrow).
MOVES_MONEY = frozenset(
    {
        Command.RELEASE,
        Command.AUTO_RELEASE,
        Command.DISPUTE,
        Command.RESOLVE_RELEASE,
        Command.RESOLVE_REFUND,
        Command.RESOLVE_SPLIT,
        Command.REQUEST_REFUND,
        Command.ACCEPT_REFUND_REQUEST,
        Command.REFUND_DEADLINE,
        Command.REFUND,
        Command.HOLDING_LIMIT,
    }
)


def _actor(ctx: Context, *roles: ActorRole) -> None:
    if ctx.actor not in roles:
        who = " or ".join(roles)
        raise Refused("actor.wrong_role", f"Only the {who} can do this.", status=403)


def _state(ctx: Context, allowed: frozenset[State] | set[State], what: str) -> State:
    state = ctx.state
    assert state is not None
    if state in allowed:
        return state
    if state == "deleted":
        raise Refused("milestone.deleted", "This milestone was deleted.")
    raise Refused(
        "milestone.wrong_state", f"A milestone that is {state.replace('_', ' ')} cannot be {what}."
    )


def _not_paid(ctx: Context, what: str) -> None:
    if ctx.state in PAID:
        raise Refused(
            "milestone.already_paid", f"A milestone cannot be {what} once it has been paid for."
        )


def _contract_open(ctx: Context) -> None:
    if ctx.contract not in ("proposal", "live"):
        raise Refused("contract.closed", f"The contract is {ctx.contract}; nothing can change.")


def _refund_requested(ctx: Context) -> None:
    if not ctx.refund_requested:
        raise Refused("milestone.no_refund_request", "The customer has not requested a refund.")


def _creator(ctx: Context) -> ActorRole:
    return "customer" if ctx.settings.customer_mode else "freelancer"


HELD: frozenset[State] = frozenset({"funded", "submitted"})

#: The rows of the workflow table that depend on nothing but who acts and the state:
#: command -> (the one role that may, the states it may happen in, the verb for a refusal,
#: the state it moves to).
_MOVES: dict[Command, tuple[ActorRole, frozenset[State], str, State]] = {
    Command.PAYMENT_SUCCEEDED: ("payments", frozenset({"funding"}), "marked funded", "funded"),
    Command.PAYMENT_FAILED: ("payments", frozenset({"funding"}), "marked failed", "approved"),
    Command.COMPLETE: ("freelancer", frozenset({"funded"}), "marked complete", "submitted"),
    Command.DISPUTE: ("customer", HELD, "disputed", "disputed"),
    Command.RESOLVE_RELEASE: ("operator", frozenset({"disputed"}), "resolved", "releasing"),
    Command.RESOLVE_SPLIT: ("operator", frozenset({"disputed"}), "resolved", "releasing"),
    Command.RESOLVE_REFUND: ("operator", frozenset({"disputed"}), "resolved", "refunding"),
    Command.REFUND: ("freelancer", HELD, "refunded", "refunding"),
    Command.RELEASE_COMPLETED: (
        "payments",
        frozenset({"releasing"}),
        "marked released",
        "released",
    ),
    Command.SPLIT_COMPLETED: ("payments", frozenset({"releasing"}), "marked settled", "settled"),
    Command.REFUND_COMPLETED: ("payments", frozenset({"refunding"}), "marked refunded", "refunded"),
}


def decide(command: Command, ctx: Context) -> State:
    """The state the milestone moves to under ``command``, or :class:`Refused`."""
    if ctx.chargeback_open and command in MOVES_MONEY:
        raise Refused(
            "milestone.chargeback_open",
            "The customer's bank opened a chargeback on this payment: the money is frozen "
            "while the marketplace's operators handle it, so nothing can be released or "
            "refunded now.",
        )
    if (move := _MOVES.get(command)) is not None:
        role, allowed, what, target = move
        _actor(ctx, role)
        _state(ctx, allowed, what)
        return target
    s = ctx.settings
    match command:
        case Command.CREATE:
            _contract_open(ctx)
            if ctx.actor == "customer" and not s.customer_mode:
                raise Refused(
                    "setting.customer_cannot_create",
                    "On this marketplace freelancers create the milestones.",
                )
            if ctx.actor == "freelancer" and s.customer_mode:
                raise Refused(
                    "setting.freelancer_cannot_create",
                    "On this marketplace customers create the milestones (tasks).",
                )
            _actor(ctx, "customer", "freelancer")
            return "draft" if s.needs_freelancer_approval else "approved"

        case Command.EDIT:
            _contract_open(ctx)
            _actor(ctx, _creator(ctx))
            _not_paid(ctx, "edited")
            state = _state(ctx, UNPAID, "edited")
            if state == "approved" and s.needs_freelancer_approval:
                return "pending_approval"
            return state

        case Command.SEND_FOR_APPROVAL:
            _contract_open(ctx)
            _actor(ctx, "customer")
            if not s.needs_freelancer_approval:
                raise Refused(
                    "setting.no_freelancer_approval",
                    "On this marketplace milestones need no freelancer approval.",
                )
            _not_paid(ctx, "sent for approval")
            _state(ctx, {"draft", "changes_requested"}, "sent for approval")
            return "pending_approval"

        case Command.APPROVE:
            _contract_open(ctx)
            _actor(ctx, "freelancer")
            if not s.needs_freelancer_approval:
                raise Refused(
                    "setting.no_freelancer_approval",
                    "On this marketplace milestones need no freelancer approval.",
                )
            _state(ctx, {"pending_approval"}, "approved")
            if s.charge_on_freelancer_approval and ctx.contract == "live":
                return "funding"
            return "approved"

        case Command.REQUEST_CHANGES:
            _contract_open(ctx)
            _actor(ctx, "freelancer")
            _state(ctx, {"pending_approval"}, "sent back for changes")
            return "changes_requested"

        case Command.DELETE:
            _contract_open(ctx)
            _actor(ctx, _creator(ctx))
            _not_paid(ctx, "deleted")
            state = _state(ctx, UNPAID, "deleted")
            if state == "approved" and not (
                s.allow_delete_until_paid or s.skip_freelancer_approval or not s.customer_mode
            ):
                raise Refused(
                    "milestone.approved_by_freelancer",
                    "The freelancer has approved this task; this marketplace does "
                    "not allow deleting approved tasks.",
                )
            return "deleted"

        case Command.PAY:
            _actor(ctx, "customer")
            if ctx.contract != "live":
                raise Refused(
                    "contract.not_live", "Milestones can be paid only once the contract is live."
                )
            _not_paid(ctx, "paid again")
            if ctx.state == "deleted":
                raise Refused("milestone.deleted", "This milestone was deleted.")
            if ctx.state != "approved":
                raise Refused(
                    "milestone.not_approved",
                    "Only milestones the freelancer has approved can be paid.",
                )
            return "funding"

        case Command.RELEASE:
            _actor(ctx, "customer")
            releasable: set[State] = {"submitted"}
            if s.skip_freelancer_approval:
                releasable.add("funded")
            elif ctx.state == "funded":
                raise Refused(
                    "milestone.not_submitted",
                    "The freelancer has not marked this milestone complete yet.",
                )
            _state(ctx, releasable, "released")
            return "releasing"

        case Command.AUTO_RELEASE:
            _actor(ctx, "system")
            _state(ctx, {"submitted"}, "released automatically")
            if ctx.refund_requested:
                raise Refused(
                    "milestone.refund_requested",
                    "A refund request is open; auto-release waits for it.",
                )
            return "releasing"

        case Command.REQUEST_REFUND:
            _actor(ctx, "customer")
            state = _state(ctx, HELD, "refunded on request")
            if ctx.refund_requested:
                raise Refused(
                    "milestone.refund_already_requested",
                    "A refund has already been requested for this milestone.",
                )
            return state

        case Command.ACCEPT_REFUND_REQUEST | Command.DECLINE_REFUND_REQUEST:
            _actor(ctx, "freelancer")
            _state(ctx, HELD, "refunded on request")
            _refund_requested(ctx)
            return "refunding" if command == Command.ACCEPT_REFUND_REQUEST else "disputed"

        case Command.REFUND_DEADLINE:
            _actor(ctx, "system")
            _state(ctx, HELD, "refunded at the deadline")
            _refund_requested(ctx)
            return "refunding"

        case Command.HOLDING_LIMIT:
            _actor(ctx, "system")
            _state(ctx, HELD, "settled at the holding limit")
            return "releasing" if s.holding_limit_fallback == "release" else "refunding"
    raise AssertionError(f"unhandled command {command}")  # pragma: no cover


def holding_limit_days(freelancer_country: str | None) -> int:
    """How many days Stripe lets the platform hold funds: about 90, 2 years in the US."""
    return 730 if freelancer_country == "US" else 90


def can_end_contract(milestone_states: list[State]) -> bool:
    """A live contract can end only when no milestone has money in flight."""
    return not any(state in MONEY_IN_FLIGHT for state in milestone_states)
