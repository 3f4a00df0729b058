"""Outcomes of money movements (topic ``cairn.payments.v1``, key = contract id).

Published by the payments service in answer to the contracts service's
``funding_requested`` / ``release_requested`` / ``refund_ordered`` / ``split_ordered``, or
on its own (Stripe webhooks, reconciliation). ``amount`` is always the milestone amount.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cairn_schemas import topics
from cairn_schemas.base import (
    Amount,
    AmountOrZero,
    Attempt,
    ContractScoped,
    Currency,
    Id,
    Text,
    require_sum,
)


class PaymentEvent(ContractScoped):
    """Base of every payment outcome: which milestone's escrow, and how much."""

    topic = topics.PAYMENTS

    milestone_id: Id
    amount: Amount
    currency: Currency


class PaymentFunded(PaymentEvent):
    """The customer's card was charged; the money is held in escrow for the freelancer."""

    event_type = "cairn.payment.funded"

    attempt: Attempt
    payment_intent_id: Id
    charge_id: Id


class PaymentFailed(PaymentEvent):
    """A funding attempt failed (declined card, no saved card...)."""

    event_type = "cairn.payment.failed"

    attempt: Attempt
    reason: Text = Field(description="A sentence the customer can read.")
    failure_code: str | None = Field(default=None, description="Stripe's code, e.g. card_declined.")
    payment_intent_id: Id | None = None


class PaymentActionRequired(PaymentEvent):
    """The charge needs the customer to authenticate (SCA) with this client secret."""

    event_type = "cairn.payment.action_required"

    attempt: Attempt
    payment_intent_id: Id
    client_secret: Id = Field(repr=False, description="For the front end only; never log it.")


class PaymentReleased(PaymentEvent):
    """The freelancer's share was transferred to their connected account."""

    event_type = "cairn.payment.released"

    transfer_id: Id
    amount_to_freelancer: AmountOrZero
    platform_fee: AmountOrZero

    @model_validator(mode="after")
    def _adds_up(self) -> PaymentReleased:
        require_sum(
            self.amount,
            "amount",
            amount_to_freelancer=self.amount_to_freelancer,
            platform_fee=self.platform_fee,
        )
        return self


class PaymentReleasePending(PaymentEvent):
    """A release waits until the freelancer's connected account can receive payouts; it
    happens by itself when the account is ready (``account.updated``)."""

    event_type = "cairn.payment.release_pending"

    freelancer_id: Id
    reason: Text = Field(description="What the freelancer still has to do, readable by them.")


class PaymentRefunded(PaymentEvent):
    """The whole ``amount`` was refunded to the customer's card."""

    event_type = "cairn.payment.refunded"

    refund_id: Id
    charge_id: Id


class PaymentSplitSettled(PaymentEvent):
    """A dispute split was carried out: a transfer to the freelancer and a partial refund."""

    event_type = "cairn.payment.split_settled"

    dispute_id: Id
    transfer_id: Id
    refund_id: Id
    amount_to_freelancer: AmountOrZero = Field(description="Transferred, after the fee.")
    platform_fee: AmountOrZero
    amount_refunded: Amount

    @model_validator(mode="after")
    def _adds_up(self) -> PaymentSplitSettled:
        require_sum(
            self.amount,
            "amount",
            amount_to_freelancer=self.amount_to_freelancer,
            platform_fee=self.platform_fee,
            amount_refunded=self.amount_refunded,
        )
        return self


class PaymentChargebackOpened(PaymentEvent):
    """The customer's bank opened a chargeback on the milestone's charge; the escrow is
    frozen (or, if already released, it is recorded against the freelancer)."""

    event_type = "cairn.payment.chargeback_opened"

    charge_id: Id
    stripe_dispute_id: Id
    chargeback_amount: Amount
    reason: Text
    funds_released: bool = Field(description="True when the money had already gone out.")
    owed_by_freelancer: AmountOrZero = Field(
        default=0,
        description="The part of the chargeback recorded as owed by the freelancer (money "
        "already paid out to them, under the freelancer policy); the rest came from the "
        "escrow or is borne by the platform.",
    )


class PaymentReconciling(PaymentEvent):
    """A Stripe call's outcome is unknown (timeout, 5xx); nothing moves for this milestone
    until payments has looked the object up. A normal outcome event follows."""

    event_type = "cairn.payment.reconciling"

    operation: Literal["charge", "release", "refund", "split"]
    reason: Text
    attempt: Attempt | None = None
