"""A :class:`Milestone` of a contract and the commands its parties and operators give."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from cairn_contracts.domain.errors import Refused
from cairn_contracts.domain.milestone_core import MILESTONE_ACTIONS
from cairn_contracts.domain.milestone_outcomes import MilestoneOutcomes
from cairn_contracts.domain.records import Calendar, Caller, Dispute, Message, new_id
from cairn_contracts.domain.states import Command

__all__ = ["MILESTONE_ACTIONS", "Milestone"]

Outcome = Literal["release", "refund", "split"]
RESOLUTIONS = {
    "release": Command.RESOLVE_RELEASE,
    "refund": Command.RESOLVE_REFUND,
    "split": Command.RESOLVE_SPLIT,
}


class Milestone(MilestoneOutcomes):
    """A milestone (task): the parties' commands; payments' and the timers' come from
    :class:`MilestoneOutcomes`."""

    def edit(
        self, caller: Caller, now: datetime, expected_version: int, changes: dict[str, Any]
    ) -> None:
        """The creator edits an unpaid milestone it has seen in ``expected_version``."""
        if expected_version != self.version:
            raise Refused(
                "milestone.stale_version",
                f"The milestone changed since you loaded it (now version {self.version}); "
                "reload it and try again.",
            )
        before = {
            "previous_title": self.title,
            "previous_amount": self.amount,
            "previous_description": self.description,
        }
        step = self._step(Command.EDIT, caller, now)
        self.title = changes.get("title", self.title)
        self.description = changes.get("description", self.description)
        self.amount = changes.get("amount", self.amount)
        self._done(step, caller, now, description=self.description, **before)

    def send_for_approval(self, caller: Caller, now: datetime) -> None:
        """The customer sends a task to the freelancer to review."""
        step = self._step(Command.SEND_FOR_APPROVAL, caller, now)
        self._done(step, caller, now, description=self.description)

    def approve(self, caller: Caller, now: datetime, version: int) -> None:
        """The freelancer approves the version they saw; with charge-on-approval on a live
        contract the customer's card is charged at once."""
        if version != self.version:
            raise Refused(
                "milestone.stale_version",
                f"You approved version {version}, but the task is now version "
                f"{self.version}; review the latest version.",
            )
        step = self._step(Command.APPROVE, caller, now)
        self.approved_version = self.version
        funding = self._funding_facts("freelancer_approval") if self.state == "funding" else {}
        self._done(step, caller, now, approved_version=version, **funding)

    def request_changes(self, caller: Caller, now: datetime, message: str) -> None:
        """The freelancer asks for changes; the message also goes to the contract's thread."""
        step = self._step(Command.REQUEST_CHANGES, caller, now)
        self.contract.new_messages.append(
            Message(
                new_id("msg"), self.contract_id, self.id, caller.user_id, caller.role, message, now
            )
        )
        self._done(step, caller, now, message=message)

    def delete(self, caller: Caller, now: datetime) -> None:
        """The creator deletes an unpaid milestone where the settings allow it (the event
        says from which state: a draft the freelancer never saw emails nobody)."""
        step = self._step(Command.DELETE, caller, now)
        self._done(step, caller, now, previous_state=step.previous)

    def pay(self, caller: Caller, now: datetime, trigger: str = "customer") -> None:
        """The customer pays an approved milestone: payments is asked to charge the card
        (``trigger`` says why: the customer, or the contract going live)."""
        step = self._step(Command.PAY, caller, now)
        self._done(step, caller, now, **self._funding_facts(trigger))

    def complete(self, caller: Caller, now: datetime) -> None:
        """The freelancer marks the work complete; the auto-release clock starts."""
        step = self._step(Command.COMPLETE, caller, now)
        days = self.contract.settings.auto_release_after_days
        self.submitted_at = now
        self.auto_release_at = now + Calendar.days(days) if days else None
        self._done(step, caller, now, auto_release_at=self.auto_release_at)

    def release(self, caller: Caller, now: datetime) -> None:
        """The customer approves the work: payments pays the freelancer."""
        step = self._step(Command.RELEASE, caller, now)
        self.refund_requested = False  # releasing answers any open refund request
        self._done(step, caller, now, **self._release_facts("customer"))

    def _open_dispute(self, caller: Caller, now: datetime, reason: str) -> dict[str, Any]:
        self.dispute = Dispute(
            new_id("dp"), self.marketplace_id, self.contract_id, self.id, reason,
            caller.user_id, now,
        )  # fmt: skip
        self.dispute_id = self.dispute.id
        self.refund_requested = False
        return {"dispute_id": self.dispute.id, "reason": reason, "opened_by": caller.actor}

    def open_dispute(self, caller: Caller, now: datetime, reason: str) -> None:
        """The customer disputes the work; operators decide."""
        step = self._step(Command.DISPUTE, caller, now)
        facts = self._open_dispute(caller, now, reason)
        self._done(step, caller, now, origin="customer", **facts)

    def request_refund(self, caller: Caller, now: datetime, reason: str) -> None:
        """The customer asks for the money back; the freelancer has
        ``refund_response_days`` to answer."""
        step = self._step(Command.REQUEST_REFUND, caller, now)
        self.refund_requested = True
        self.refund_reason = reason
        days = self.contract.settings.refund_response_days
        self.refund_respond_by = now + Calendar.days(days)
        self._done(step, caller, now, reason=reason, respond_by=self.refund_respond_by)

    def answer_refund_request(
        self, caller: Caller, now: datetime, accept: bool, message: str | None
    ) -> None:
        """The freelancer accepts (refund) or declines (dispute) the customer's request."""
        if accept:
            step = self._step(Command.ACCEPT_REFUND_REQUEST, caller, now)
            self.refund_requested = False
            self._done(step, caller, now, reason="refund_request_accepted", dispute_id=None)
            return
        step = self._step(Command.DECLINE_REFUND_REQUEST, caller, now)
        reason = self.refund_reason or "Refund request declined"
        facts = self._open_dispute(caller, now, reason)
        self._done(step, caller, now, message=message, origin="refund_request_declined", **facts)

    def refund(self, caller: Caller, now: datetime) -> None:
        """The freelancer gives the money back."""
        step = self._step(Command.REFUND, caller, now)
        self.refund_requested = False
        self._done(step, caller, now, reason="freelancer_refund", dispute_id=None)

    def resolve_dispute(
        self,
        caller: Caller,
        now: datetime,
        outcome: Outcome,
        amount_to_freelancer: int | None,
        note: str,
    ) -> None:
        """An operator resolves the open dispute: release, refund, or a split adding up."""
        dispute = self.dispute
        assert dispute is not None, "the dispute is loaded with the milestone it is about"
        if dispute.status != "open":
            raise Refused("dispute.already_resolved", "This dispute was already resolved.")
        to_freelancer = {"release": self.amount, "refund": 0}.get(outcome, amount_to_freelancer)
        if to_freelancer is None or (outcome == "split" and not 0 < to_freelancer < self.amount):
            raise Refused(
                "dispute.invalid_split",
                f"A split names an amount for the freelancer between 1 and "
                f"{self.amount - 1} (the rest, up to {self.amount}, is refunded).",
            )
        step = self._step(RESOLUTIONS[outcome], caller, now)
        to_customer = self.amount - to_freelancer
        dispute.status, dispute.outcome, dispute.note = "resolved", outcome, note
        dispute.amount_to_freelancer, dispute.amount_to_customer = to_freelancer, to_customer
        dispute.resolved_by, dispute.resolved_at = caller.user_id, now
        if outcome == "split":
            self.split_to_freelancer = to_freelancer
        facts = self._release_facts("dispute", dispute.id) | {
            "outcome": outcome,
            "amount_to_freelancer": to_freelancer,
            "amount_to_customer": to_customer,
            "note": note,
            "resolved_by": caller.actor,
            "reason": "dispute",
        }
        self._done(step, caller, now, **facts)
