"""The sentences the workflow table refuses with when no row applies (``rules.decide``
picks which): who may act, the contract's state, the milestone's state."""

from __future__ import annotations

from cairn_contracts.domain.errors import Refused
from cairn_contracts.domain.states import (
    LIVE,
    PAID,
    PROPOSAL,
    Command,
    ContractState,
    State,
)

C = Command
#: How a refusal names the command ("A milestone that is funded cannot be <verb>").
VERBS: dict[Command, str] = {
    C.EDIT: "edited",
    C.SEND_FOR_APPROVAL: "sent for approval",
    C.APPROVE: "approved",
    C.REQUEST_CHANGES: "sent back for changes",
    C.DELETE: "deleted",
    C.PAY: "paid again",
    C.COMPLETE: "marked complete",
    C.RELEASE: "released",
    C.AUTO_RELEASE: "released automatically",
    C.DISPUTE: "disputed",
    C.REQUEST_REFUND: "refunded on request",
    C.ACCEPT_REFUND_REQUEST: "refunded on request",
    C.DECLINE_REFUND_REQUEST: "refunded on request",
    C.REFUND_DEADLINE: "refunded at the deadline",
    C.REFUND: "refunded",
    C.HOLDING_LIMIT: "settled at the holding limit",
    C.ACCEPT: "accepted",
    C.DECLINE: "declined",
    C.WITHDRAW: "withdrawn",
    C.END: "ended",
}
#: Commands refused on a paid milestone with ``milestone.already_paid``.
UNPAID_ONLY = frozenset({C.EDIT, C.SEND_FOR_APPROVAL, C.DELETE, C.PAY})


def wrong_role(roles: list[str]) -> Refused:
    """Only ``roles`` may give this command."""
    return Refused("auth.wrong_role", f"Only the {' or '.join(roles)} can do this.")


def contract_state(
    command: Command, allowed: frozenset[ContractState], contract: ContractState
) -> Refused:
    """The command needs the contract in one of ``allowed``; it is ``contract``."""
    verb = VERBS.get(command, "done")
    if allowed == PROPOSAL:
        return Refused(
            "contract.not_proposal", f"Only a proposal can be {verb}; this contract is {contract}."
        )
    if allowed == LIVE:
        what = "Milestones can be paid" if command == C.PAY else f"A contract can be {verb}"
        return Refused("contract.not_live", f"{what} only while it is live; it is {contract}.")
    return Refused("contract.closed", f"The contract is {contract}; nothing can change.")


def milestone_state(command: Command, state: State | str) -> Refused:
    """The command does not apply to a milestone in ``state``."""
    verb = VERBS.get(command, "moved on by this outcome")
    if command in UNPAID_ONLY and state in PAID:
        return Refused(
            "milestone.already_paid", f"A milestone cannot be {verb} once it has been paid for."
        )
    if state == "deleted":
        return Refused("milestone.deleted", "This milestone was deleted.")
    if command == C.PAY:
        return Refused(
            "milestone.not_approved", "Only milestones the freelancer has approved can be paid."
        )
    return Refused(
        "milestone.wrong_state", f"A milestone that is {state.replace('_', ' ')} cannot be {verb}."
    )
