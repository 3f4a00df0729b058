"""The named predicates of the workflow table's conditional rows.

A predicate reads either only the pinned settings (``on_settings``: checked before the
milestone's state, so "this marketplace has no approval step" wins over "wrong state") or
the milestone's own flags. When no row applies, the refusal of the predicate that ruled the
nearest row out is the answer the caller gets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cairn_contracts.domain.states import Context


@dataclass(frozen=True)
class Predicate:
    """A named condition of a row, with the refusal it gives when it does not hold."""

    name: str
    test: Callable[[Context], bool]
    refusal_code: str
    refusal: str
    on_settings: bool = True

    def __call__(self, ctx: Context) -> bool:
        return self.test(ctx)

    def __repr__(self) -> str:
        return self.name


NO_APPROVAL_STEP = "On this marketplace milestones need no freelancer approval."
CUSTOMERS_CREATE = "On this marketplace customers create the milestones (tasks)."
FREELANCERS_CREATE_TEXT = "On this marketplace freelancers create the milestones."

CUSTOMERS_CREATE_FOR_APPROVAL = Predicate(
    "customers create, the freelancer approves",
    lambda c: c.settings.needs_freelancer_approval,
    "setting.customer_cannot_create",
    FREELANCERS_CREATE_TEXT,
)
CUSTOMERS_CREATE_APPROVED = Predicate(
    "customers create, no approval step (skip_freelancer_approval)",
    lambda c: c.settings.customer_mode and c.settings.skip_freelancer_approval,
    "setting.customer_cannot_create",
    FREELANCERS_CREATE_TEXT,
)
FREELANCERS_CREATE = Predicate(
    "freelancers create",
    lambda c: not c.settings.customer_mode,
    "setting.freelancer_cannot_create",
    CUSTOMERS_CREATE,
)
NEEDS_APPROVAL = Predicate(
    "the freelancer approves customers' tasks",
    lambda c: c.settings.needs_freelancer_approval,
    "setting.no_freelancer_approval",
    NO_APPROVAL_STEP,
)
CHARGES_ON_APPROVAL = Predicate(
    "charge_on_freelancer_approval",
    lambda c: c.settings.needs_freelancer_approval and c.settings.charge_on_freelancer_approval,
    "setting.no_freelancer_approval",
    NO_APPROVAL_STEP,
)
APPROVED_DELETABLE = Predicate(
    "an approved milestone may be deleted (allow_delete_until_paid, skip approval, "
    "or freelancer mode)",
    lambda c: c.settings.allow_delete_until_paid or not c.settings.needs_freelancer_approval,
    "milestone.approved_by_freelancer",
    "The freelancer has approved this task; this marketplace does not allow deleting "
    "approved tasks.",
)
SKIPS_APPROVAL = Predicate(
    "skip_freelancer_approval",
    lambda c: c.settings.skip_freelancer_approval,
    "milestone.not_submitted",
    "The freelancer has not marked this milestone complete yet.",
)
FALLBACK_RELEASE = Predicate(
    "holding_limit_fallback is release",
    lambda c: c.settings.holding_limit_fallback == "release",
    "milestone.wrong_state",
    "The holding-limit fallback of this marketplace is a refund.",
)
FALLBACK_REFUND = Predicate(
    "holding_limit_fallback is refund",
    lambda c: c.settings.holding_limit_fallback == "refund",
    "milestone.wrong_state",
    "The holding-limit fallback of this marketplace is a release.",
)
# --- the milestone's (and contract's) own flags ---
REFUND_REQUEST_OPEN = Predicate(
    "a refund request is open",
    lambda c: c.refund_requested,
    "milestone.no_refund_request",
    "The customer has not requested a refund.",
    on_settings=False,
)
FIRST_REFUND_REQUEST = Predicate(
    "no refund request yet",
    lambda c: not c.refund_requested,
    "milestone.refund_already_requested",
    "A refund has already been requested for this milestone.",
    on_settings=False,
)
NO_REFUND_REQUEST_WAITING = Predicate(
    "no refund request waits for an answer",
    lambda c: not c.refund_requested,
    "milestone.refund_requested",
    "A refund request is open; auto-release waits for it.",
    on_settings=False,
)
SPLIT_ORDERED = Predicate(
    "a split was ordered",
    lambda c: c.split_ordered,
    "milestone.wrong_state",
    "No split was ordered for this milestone.",
    on_settings=False,
)
NO_SPLIT_ORDERED = Predicate(
    "no split was ordered",
    lambda c: not c.split_ordered,
    "milestone.wrong_state",
    "A split was ordered for this milestone, not a release.",
    on_settings=False,
)
NO_CHARGEBACK_YET = Predicate(
    "no chargeback recorded yet",
    lambda c: not c.chargeback_open,
    "milestone.chargeback_open",
    "A chargeback is already recorded on this milestone.",
    on_settings=False,
)
NO_MONEY_IN_FLIGHT = Predicate(
    "no milestone has money in flight",
    lambda c: not c.money_in_flight,
    "contract.money_in_flight",
    "A milestone is being paid, is in escrow or is disputed; settle it before ending the contract.",
    on_settings=False,
)
