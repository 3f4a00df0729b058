"""Milestone lifecycle events (topic ``cairn.contracts.v1``, key = contract id).

Every class carries the milestone's title, amount, currency, version and state *after*
the event, and the actor who caused it, so an email or a ledger entry needs nothing else.
Those ending in ``_requested`` / ``_ordered`` are the contracts service asking payments to
move money; payments answers on ``cairn.payments.v1``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cairn_schemas import topics
from cairn_schemas.base import (
    Amount,
    AmountOrZero,
    Attempt,
    BasisPoints,
    Id,
    Line,
    MilestoneEvent,
    MilestoneState,
    Text,
    Timestamp,
    Version,
    require_sum,
)


class _ContractsTopic(MilestoneEvent):
    topic = topics.CONTRACTS


class MilestoneCreated(_ContractsTopic):
    """A milestone was added: ``draft`` (customer mode) or ``approved`` (freelancer mode,
    or customer mode with skip-approval)."""

    event_type = "cairn.milestone.created"

    description: str
    created_by: Literal["customer", "freelancer"]


class MilestoneEdited(_ContractsTopic):
    """The creator changed a milestone before it was paid (an approved one may go back to
    ``pending_approval``)."""

    event_type = "cairn.milestone.edited"

    description: str
    previous_title: Line
    previous_amount: Amount
    previous_description: str | None = None


class MilestoneSentForApproval(_ContractsTopic):
    """The customer sent a milestone to the freelancer to review ("new task to review")."""

    event_type = "cairn.milestone.sent_for_approval"

    description: str


class MilestoneApproved(_ContractsTopic):
    """The freelancer approved a milestone; with sub-option 3 on a live contract its state
    is already ``funding`` and a ``funding_requested`` follows."""

    event_type = "cairn.milestone.approved"

    approved_version: Version = Field(description="The milestone version the freelancer saw.")


class MilestoneChangesRequested(_ContractsTopic):
    """The freelancer asked the customer to amend a milestone."""

    event_type = "cairn.milestone.changes_requested"

    message: Text


class MilestoneDeleted(_ContractsTopic):
    """The creator deleted an unpaid milestone; the other party is told."""

    event_type = "cairn.milestone.deleted"

    previous_state: MilestoneState | None = Field(
        default=None,
        description="The state it was deleted from: a `draft` the freelancer was never "
        "sent is nobody else's news. Absent in events written before it was added.",
    )


class MilestoneFundingRequested(_ContractsTopic):
    """Charge the customer for this milestone (payments consumes this).

    Payments charges ``amount`` + ``currency`` to ``customer_id``'s saved card with an
    idempotency key derived from (``milestone_id``, ``attempt``): a redelivery of the same
    attempt can never charge twice, and paying again after a failure is a new attempt.
    """

    event_type = "cairn.milestone.funding_requested"

    customer_id: Id
    freelancer_id: Id
    platform_fee_bps: BasisPoints
    attempt: Attempt
    trigger: Literal["customer", "freelancer_approval", "contract_started"] = Field(
        default="customer",
        description="customer = the customer pressed pay (on session); freelancer_approval "
        "/ contract_started = sub-option 3 charging the saved card off session.",
    )
    payment_method_id: Id | None = Field(
        default=None, description="The saved card to charge; null = the customer's default."
    )
    chargeback_after_release: Literal["freelancer", "platform"] = Field(
        default="freelancer",
        description="The contract's policy for a chargeback after release (see the "
        "marketplace setting of that name): who bears the part already paid out.",
    )


class MilestoneFunded(_ContractsTopic):
    """The money is in escrow; the freelancer can start work."""

    event_type = "cairn.milestone.funded"

    payment_intent_id: Id
    charge_id: Id
    attempt: Attempt | None = None


class MilestonePaymentFailed(_ContractsTopic):
    """A funding attempt failed; the milestone is back where it was and may be paid again."""

    event_type = "cairn.milestone.payment_failed"

    reason: Text = Field(description="A sentence the customer can read.")
    failure_code: str | None = None
    attempt: Attempt | None = None
    payment_intent_id: Id | None = None


class MilestonePaymentActionRequired(_ContractsTopic):
    """The bank wants the customer to authenticate (SCA) before the charge completes."""

    event_type = "cairn.milestone.payment_action_required"

    payment_intent_id: Id
    client_secret: Id = Field(repr=False, description="For the front end only; never log it.")
    attempt: Attempt | None = None


class MilestoneSubmitted(_ContractsTopic):
    """The freelancer marked the work complete; the customer should review it."""

    event_type = "cairn.milestone.submitted"

    auto_release_at: Timestamp | None = Field(
        default=None, description="When it releases by itself if nobody acts; null = never."
    )


class MilestoneReleaseRequested(_ContractsTopic):
    """Pay the freelancer: transfer ``amount`` less the platform fee (payments consumes)."""

    event_type = "cairn.milestone.release_requested"

    trigger: Literal["customer", "auto_release", "dispute", "holding_limit"]
    platform_fee_bps: BasisPoints
    freelancer_id: Id
    dispute_id: Id | None = None


class MilestoneReleased(_ContractsTopic):
    """The freelancer was paid."""

    event_type = "cairn.milestone.released"

    transfer_id: Id
    amount_to_freelancer: AmountOrZero
    platform_fee: AmountOrZero

    @model_validator(mode="after")
    def _adds_up(self) -> MilestoneReleased:
        require_sum(
            self.amount,
            "amount",
            amount_to_freelancer=self.amount_to_freelancer,
            platform_fee=self.platform_fee,
        )
        return self


class MilestoneRefundRequested(_ContractsTopic):
    """The customer asked the freelancer for a refund; no answer by ``respond_by`` refunds."""

    event_type = "cairn.milestone.refund_requested"

    reason: Text
    respond_by: Timestamp


class MilestoneRefundRequestDeclined(_ContractsTopic):
    """The freelancer declined the customer's refund request; a dispute follows."""

    event_type = "cairn.milestone.refund_request_declined"

    message: str | None = None


class MilestoneRefundOrdered(_ContractsTopic):
    """Give the whole ``amount`` back to the customer (payments consumes this).

    A partial refund is only ever a dispute split (``split_ordered``).
    """

    event_type = "cairn.milestone.refund_ordered"

    reason: Literal[
        "freelancer_refund",
        "refund_request_accepted",
        "refund_deadline",
        "dispute",
        "holding_limit",
    ]
    dispute_id: Id | None = None


class MilestoneSplitOrdered(_ContractsTopic):
    """An operator split a disputed milestone: transfer one part, refund the rest
    (payments consumes this; the fee is taken from the freelancer's part)."""

    event_type = "cairn.milestone.split_ordered"

    dispute_id: Id
    amount_to_freelancer: Amount
    amount_to_customer: Amount
    platform_fee_bps: BasisPoints
    freelancer_id: Id

    @model_validator(mode="after")
    def _adds_up(self) -> MilestoneSplitOrdered:
        require_sum(
            self.amount,
            "amount",
            amount_to_freelancer=self.amount_to_freelancer,
            amount_to_customer=self.amount_to_customer,
        )
        return self


class MilestoneRefunded(_ContractsTopic):
    """The whole ``amount`` went back to the customer's card."""

    event_type = "cairn.milestone.refunded"

    refund_id: Id


class MilestoneSettled(_ContractsTopic):
    """A dispute split is done: the freelancer got their part less the fee, the customer
    the rest."""

    event_type = "cairn.milestone.settled"

    amount_to_freelancer: AmountOrZero = Field(description="Transferred, after the fee.")
    platform_fee: AmountOrZero
    amount_refunded: Amount
    transfer_id: Id
    refund_id: Id
    dispute_id: Id

    @model_validator(mode="after")
    def _adds_up(self) -> MilestoneSettled:
        require_sum(
            self.amount,
            "amount",
            amount_to_freelancer=self.amount_to_freelancer,
            platform_fee=self.platform_fee,
            amount_refunded=self.amount_refunded,
        )
        return self


class MilestoneAutoReleaseReminder(_ContractsTopic):
    """Tells the customer that submitted work will be released automatically."""

    event_type = "cairn.milestone.auto_release_reminder"

    releases_at: Timestamp


class MilestoneRefundDeadlineReminder(_ContractsTopic):
    """Tells the freelancer that an unanswered refund request will refund at ``deadline``."""

    event_type = "cairn.milestone.refund_deadline_reminder"

    deadline: Timestamp


class MilestoneHoldingLimitReminder(_ContractsTopic):
    """Escrowed money nears Stripe's holding limit; at ``limit_at`` the fallback applies."""

    event_type = "cairn.milestone.holding_limit_reminder"

    limit_at: Timestamp
    fallback: Literal["release", "refund"]
