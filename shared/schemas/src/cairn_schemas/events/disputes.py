"""Disputes over a milestone's money (topic ``cairn.contracts.v1``, key = contract id)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from cairn_schemas import topics
from cairn_schemas.base import (
    Actor,
    Amount,
    AmountOrZero,
    ContractScoped,
    Currency,
    Id,
    Line,
    Text,
    require_sum,
)


class DisputeOpened(ContractScoped):
    """The customer disputed a milestone (or declined refund request became a dispute);
    the milestone is ``disputed`` and operators must decide."""

    event_type = "cairn.dispute.opened"
    topic = topics.CONTRACTS

    dispute_id: Id
    milestone_id: Id
    milestone_title: Line
    reason: Text
    opened_by: Actor
    amount: Amount
    currency: Currency
    origin: Literal["customer", "refund_request_declined"] = "customer"


class DisputeResolved(ContractScoped):
    """An operator decided a dispute: all to the freelancer, all back to the customer, or
    a split; the two shares add up exactly to the milestone ``amount``."""

    event_type = "cairn.dispute.resolved"
    topic = topics.CONTRACTS

    dispute_id: Id
    milestone_id: Id
    milestone_title: Line
    outcome: Literal["release", "refund", "split"]
    amount: Amount
    currency: Currency
    amount_to_freelancer: AmountOrZero
    amount_to_customer: AmountOrZero
    note: Text
    resolved_by: Actor

    @model_validator(mode="after")
    def _shares_match_outcome(self) -> DisputeResolved:
        require_sum(
            self.amount,
            "amount",
            amount_to_freelancer=self.amount_to_freelancer,
            amount_to_customer=self.amount_to_customer,
        )
        if self.outcome == "release" and self.amount_to_customer:
            raise ValueError("outcome 'release' gives nothing to the customer")
        if self.outcome == "refund" and self.amount_to_freelancer:
            raise ValueError("outcome 'refund' gives nothing to the freelancer")
        if self.outcome == "split" and not (self.amount_to_freelancer and self.amount_to_customer):
            raise ValueError("outcome 'split' gives some of the amount to each party")
        return self
