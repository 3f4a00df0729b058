"""The words of the workflow (DESIGN §3): states, commands, who acts, the settings the
rules read, and what the rules may look at (:class:`Context`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from cairn_schemas.base import MilestoneState, Role

#: A milestone's states (the event contract names them too).
State = MilestoneState
ContractState = Literal["proposal", "live", "ended", "declined", "withdrawn"]
ActorRole = Role

ALL_STATES: frozenset[State] = frozenset(State.__args__)  # type: ignore[attr-defined]
CONTRACT_STATES: frozenset[ContractState] = frozenset(ContractState.__args__)  # type: ignore[attr-defined]
OPEN: frozenset[ContractState] = frozenset({"proposal", "live"})
LIVE: frozenset[ContractState] = frozenset({"live"})
PROPOSAL: frozenset[ContractState] = frozenset({"proposal"})
UNPAID: frozenset[State] = frozenset({"draft", "pending_approval", "changes_requested", "approved"})
PAID: frozenset[State] = ALL_STATES - UNPAID - {"deleted"}
HELD: frozenset[State] = frozenset({"funded", "submitted"})
MONEY_IN_FLIGHT: frozenset[State] = frozenset(
    {"funding", "funded", "submitted", "releasing", "disputed", "refunding"}
)
FINAL: frozenset[State] = frozenset({"released", "refunded", "settled", "deleted"})


class Command(StrEnum):
    """Everything that can happen to a milestone or a contract (the history's ``command``)."""

    CREATE = "create"
    EDIT = "edit"
    SEND_FOR_APPROVAL = "send_for_approval"
    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"
    DELETE = "delete"
    PAY = "pay"
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_ACTION_REQUIRED = "payment_action_required"
    CHARGEBACK_OPENED = "chargeback_opened"
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
    # The contract's own rows.
    SUBMIT_PROPOSAL = "submit_proposal"
    ACCEPT = "accept"
    DECLINE = "decline"
    WITHDRAW = "withdraw"
    END = "end"


#: Commands that move the contract rather than one of its milestones.
CONTRACT_COMMANDS = frozenset(
    {Command.SUBMIT_PROPOSAL, Command.ACCEPT, Command.DECLINE, Command.WITHDRAW, Command.END}
)
MILESTONE_COMMANDS = frozenset(Command) - CONTRACT_COMMANDS

#: Commands that order money to move (payments would refuse them on a frozen escrow).
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

    @property
    def creator(self) -> ActorRole:
        """Who creates (and so edits and deletes) the milestones."""
        return "customer" if self.customer_mode else "freelancer"


@dataclass(frozen=True)
class Context:
    """What the rules may look at: the milestone (``state`` is None for create and for the
    contract's own commands), its contract, the pinned settings and who acts."""

    state: State | None
    contract: ContractState
    settings: WorkflowSettings
    actor: ActorRole
    refund_requested: bool = False
    chargeback_open: bool = False
    split_ordered: bool = False
    money_in_flight: bool = False


def can_end_contract(milestone_states: list[State]) -> bool:
    """A live contract can end only when no milestone has money in flight."""
    return not any(state in MONEY_IN_FLIGHT for state in milestone_states)


def holding_limit_days(freelancer_country: str | None) -> int:
    """How many days Stripe lets the platform hold funds: about 90, 2 years in the US."""
    return 730 if freelancer_country == "US" else 90
