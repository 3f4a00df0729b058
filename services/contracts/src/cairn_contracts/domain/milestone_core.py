"""What every milestone command shares: the milestone's fields, asking the table, moving,
and recording the change with the events its row names."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cairn_contracts.domain import rules
from cairn_contracts.domain.records import Caller, Change, Dispute, build_event
from cairn_contracts.domain.states import ActorRole, Command

if TYPE_CHECKING:
    from cairn_contracts.domain.model import Contract

#: The actions a front end offers on a milestone, each the commands it stands for.
MILESTONE_ACTIONS: dict[str, tuple[Command, ...]] = {
    "edit": (Command.EDIT,),
    "delete": (Command.DELETE,),
    "send_for_approval": (Command.SEND_FOR_APPROVAL,),
    "approve": (Command.APPROVE,),
    "request_changes": (Command.REQUEST_CHANGES,),
    "pay": (Command.PAY,),
    "complete": (Command.COMPLETE,),
    "release": (Command.RELEASE,),
    "dispute": (Command.DISPUTE,),
    "request_refund": (Command.REQUEST_REFUND,),
    "answer_refund_request": (Command.ACCEPT_REFUND_REQUEST, Command.DECLINE_REFUND_REQUEST),
    "refund": (Command.REFUND,),
    "resolve_dispute": (Command.RESOLVE_RELEASE, Command.RESOLVE_REFUND, Command.RESOLVE_SPLIT),
}


@dataclass(frozen=True)
class Step:
    """A row of the table being applied: the row and the state the milestone left."""

    row: rules.Row
    previous: str | None


@dataclass(eq=False)
class MilestoneCore:
    """A milestone (task) with its wage and where it is in the workflow."""

    id: str
    contract_id: str
    marketplace_id: str
    title: str
    description: str
    amount: int
    currency: str
    state: str
    version: int
    creator_role: str
    created_at: datetime
    updated_at: datetime
    approved_version: int | None = None
    funding_attempt: int = 0
    payment_intent_id: str | None = None
    client_secret: str | None = None
    failure_reason: str | None = None
    refund_requested: bool = False
    refund_reason: str | None = None
    refund_respond_by: datetime | None = None
    funded_at: datetime | None = None
    submitted_at: datetime | None = None
    auto_release_at: datetime | None = None
    holding_limit_at: datetime | None = None
    auto_release_reminded_at: datetime | None = None
    refund_reminded_at: datetime | None = None
    holding_reminded_at: datetime | None = None
    dispute_id: str | None = None
    split_to_freelancer: int | None = None
    chargeback_at: datetime | None = None
    chargeback_reason: str | None = None
    events: list[Change] = field(default_factory=list)
    #: The dispute this milestone opened or an operator resolves (loaded for those).
    dispute: Dispute | None = None
    #: The contract that holds it (set by the contract).
    contract: Contract = field(init=False, repr=False, compare=False)

    def actions(self, role: ActorRole) -> list[str]:
        """The actions ``role`` may take on this milestone now."""
        ctx = self.contract.context(role, self)
        return [
            name
            for name, commands in MILESTONE_ACTIONS.items()
            if any(rules.allowed(command, ctx) for command in commands)
        ]

    def _step(self, command: Command, caller: Caller, now: datetime) -> Step:
        """Ask the table; move to the row's state (a new version)."""
        row = rules.decide(command, self.contract.context(caller.role, self))
        previous = self.state
        self.state = row.next_state(previous)
        self.version += 1
        self.updated_at = now
        return Step(row, previous)

    def snapshot(self, caller: Caller) -> dict[str, Any]:
        """The fields every milestone event carries (after the change)."""
        return {
            "marketplace_id": self.marketplace_id,
            "contract_id": self.contract_id,
            "milestone_id": self.id,
            "title": self.title,
            "milestone_title": self.title,
            "amount": self.amount,
            "currency": self.currency,
            "version": self.version,
            "state": self.state,
            "actor": caller.actor,
        }

    def record(
        self,
        row: rules.Row,
        caller: Caller,
        now: datetime,
        previous: str | None,
        **facts: Any,
    ) -> None:
        """Record the change ``row`` made, publishing the row's events from the snapshot
        and ``facts``."""
        values = {**self.snapshot(caller), **facts}
        published = [build_event(cls, values) for cls in row.events]
        self.events.append(
            Change(row.command, caller, previous, self.state, self.version, published, now)
        )

    def _done(self, step: Step, caller: Caller, now: datetime, **facts: Any) -> None:
        self.record(step.row, caller, now, step.previous, **facts)

    def _funding_facts(self, trigger: str) -> dict[str, Any]:
        """A new funding attempt: payments is asked to charge the customer's card."""
        self.funding_attempt += 1
        self.client_secret = None
        self.failure_reason = None
        settings = self.contract.settings
        return {
            "customer_id": self.contract.customer_id,
            "freelancer_id": self.contract.freelancer_id,
            "platform_fee_bps": settings.platform_fee_bps,
            "attempt": self.funding_attempt,
            "trigger": trigger,
            "chargeback_after_release": settings.chargeback_after_release,
        }

    def _release_facts(self, trigger: str, dispute_id: str | None = None) -> dict[str, Any]:
        return {
            "trigger": trigger,
            "platform_fee_bps": self.contract.settings.platform_fee_bps,
            "freelancer_id": self.contract.freelancer_id,
            "dispute_id": dispute_id,
        }
