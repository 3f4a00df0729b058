"""The commands that come from outside the parties: the payments service's outcomes and
the timers (deadlines and the reminders before them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cairn_schemas.base import Event
from cairn_schemas.events import (
    MilestoneAutoReleaseReminder,
    MilestoneHoldingLimitReminder,
    MilestoneRefundDeadlineReminder,
)

from cairn_contracts.domain.milestone_core import MilestoneCore
from cairn_contracts.domain.records import Calendar, Caller, Change, build_event
from cairn_contracts.domain.states import Command, holding_limit_days

#: Reminded before the holding limit: money held while the parties (funded, submitted), an
#: operator (disputed) or the freelancer's payout details (releasing: the release waits for
#: them) decide. Only funded and submitted milestones get the fallback at the limit.
HOLDING_REMINDED = ("funded", "submitted", "disputed", "releasing")


class MilestoneOutcomes(MilestoneCore):
    """Payments' outcomes and the timers, on one milestone."""

    def payment_succeeded(
        self, caller: Caller, now: datetime, *, attempt: int, payment_intent_id: str, charge_id: str
    ) -> None:
        """The card was charged: the money is in escrow until the holding limit."""
        step = self._step(Command.PAYMENT_SUCCEEDED, caller, now)
        self.funded_at = now
        days = holding_limit_days(self.contract.freelancer_country)
        self.holding_limit_at = now + Calendar.days(days)
        self.client_secret = None
        self.payment_intent_id = payment_intent_id
        self._done(
            step, caller, now, payment_intent_id=payment_intent_id, charge_id=charge_id,
            attempt=attempt,
        )  # fmt: skip

    def payment_failed(
        self,
        caller: Caller,
        now: datetime,
        *,
        attempt: int,
        reason: str,
        failure_code: str | None,
        payment_intent_id: str | None,
    ) -> None:
        """The charge failed: back to approved, with the reason for the customer."""
        step = self._step(Command.PAYMENT_FAILED, caller, now)
        self.failure_reason = reason
        self.client_secret = None
        self._done(
            step, caller, now, reason=reason, failure_code=failure_code, attempt=attempt,
            payment_intent_id=payment_intent_id,
        )  # fmt: skip

    def payment_action_required(
        self, caller: Caller, now: datetime, *, attempt: int, payment_intent_id: str,
        client_secret: str,
    ) -> None:  # fmt: skip
        """The card needs the customer (SCA): expose the client secret; stay in funding."""
        step = self._step(Command.PAYMENT_ACTION_REQUIRED, caller, now)
        self.client_secret = client_secret
        self.payment_intent_id = payment_intent_id
        self._done(
            step, caller, now, payment_intent_id=payment_intent_id, client_secret=client_secret,
            attempt=attempt,
        )  # fmt: skip

    def chargeback_opened(self, caller: Caller, now: datetime, reason: str) -> None:
        """Payments froze the escrow for a chargeback: from now on the table refuses every
        command that orders money to move, and the timers leave the milestone alone."""
        step = self._step(Command.CHARGEBACK_OPENED, caller, now)
        self.chargeback_at = now
        self.chargeback_reason = reason
        self._done(step, caller, now)

    def release_completed(self, caller: Caller, now: datetime, **details: Any) -> None:
        """Payments paid the freelancer."""
        self._done(self._step(Command.RELEASE_COMPLETED, caller, now), caller, now, **details)

    def refund_completed(self, caller: Caller, now: datetime, **details: Any) -> None:
        """Payments refunded the customer."""
        self._done(self._step(Command.REFUND_COMPLETED, caller, now), caller, now, **details)

    def split_completed(self, caller: Caller, now: datetime, **details: Any) -> None:
        """Payments settled the operator's split."""
        self._done(self._step(Command.SPLIT_COMPLETED, caller, now), caller, now, **details)

    # --- timers --------------------------------------------------------------------------

    def auto_release(self, caller: Caller, now: datetime) -> None:
        """Submitted work was not answered in ``auto_release_after_days``: release it."""
        step = self._step(Command.AUTO_RELEASE, caller, now)
        self.refund_requested = False
        self._done(step, caller, now, **self._release_facts("auto_release"))

    def refund_deadline(self, caller: Caller, now: datetime) -> None:
        """The freelancer did not answer a refund request in time: refund."""
        step = self._step(Command.REFUND_DEADLINE, caller, now)
        self.refund_requested = False
        self._done(step, caller, now, reason="refund_deadline", dispute_id=None)

    def holding_limit(self, caller: Caller, now: datetime) -> None:
        """The escrow reached its holding limit: the marketplace's fallback applies."""
        step = self._step(Command.HOLDING_LIMIT, caller, now)
        self.refund_requested = False  # the fallback settles any open refund request
        facts = self._release_facts("holding_limit") | {"reason": "holding_limit"}
        self._done(step, caller, now, **facts)

    def _remind(self, caller: Caller, now: datetime, event: type[Event], **facts: Any) -> None:
        values = {**self.snapshot(caller), **facts}
        published = [build_event(event, values)]
        self.events.append(
            Change("remind", caller, self.state, self.state, None, published, now, False)
        )

    def remind_auto_release(self, caller: Caller, now: datetime) -> bool:
        """Tell the customer the work will be released soon (once)."""
        if (
            self.state != "submitted"
            or self.auto_release_reminded_at is not None
            or self.auto_release_at is None
            or self.refund_requested
        ):
            return False
        self.auto_release_reminded_at = now
        self._remind(caller, now, MilestoneAutoReleaseReminder, releases_at=self.auto_release_at)
        return True

    def remind_refund_deadline(self, caller: Caller, now: datetime) -> bool:
        """Tell the freelancer a refund request needs an answer soon (once)."""
        if (
            not self.refund_requested
            or self.refund_reminded_at is not None
            or self.refund_respond_by is None
        ):
            return False
        self.refund_reminded_at = now
        self._remind(caller, now, MilestoneRefundDeadlineReminder, deadline=self.refund_respond_by)
        return True

    def remind_holding_limit(self, caller: Caller, now: datetime) -> bool:
        """Tell operators and the parties the holding limit is near (once)."""
        if (
            self.state not in HOLDING_REMINDED
            or self.holding_reminded_at is not None
            or self.holding_limit_at is None
        ):
            return False
        self.holding_reminded_at = now
        self._remind(
            caller,
            now,
            MilestoneHoldingLimitReminder,
            limit_at=self.holding_limit_at,
            fallback=self.contract.settings.holding_limit_fallback,
        )
        return True
