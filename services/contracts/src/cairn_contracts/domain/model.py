"""The contracts domain: a :class:`Contract` (the aggregate root: proposal → live → ended)
and its :class:`Milestone` s. Plain Python: every method asks the workflow table
(``rules.decide``) first, then changes the aggregate and records a :class:`Change` with the
events it publishes in ``self.events``; nothing else changes a state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cairn_schemas.base import Party
from cairn_schemas.events import MessagePosted
from cairn_schemas.settings import MarketplaceSettings

from cairn_contracts.domain import rules
from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.domain.milestone import Milestone
from cairn_contracts.domain.milestone_core import MilestoneCore
from cairn_contracts.domain.records import Caller, Change, Job, Message, build_event, new_id
from cairn_contracts.domain.states import (
    MONEY_IN_FLIGHT,
    ActorRole,
    Command,
    Context,
    ContractState,
    WorkflowSettings,
)

#: The actions a front end offers on a contract, each the commands it stands for.
CONTRACT_ACTIONS: dict[str, tuple[Command, ...]] = {
    "accept": (Command.ACCEPT,),
    "decline": (Command.DECLINE,),
    "withdraw": (Command.WITHDRAW,),
    "end": (Command.END,),
    "add_milestone": (Command.CREATE,),
}

__all__ = ["CONTRACT_ACTIONS", "Caller", "Contract", "Milestone"]


@dataclass(eq=False)
class Contract:
    """A proposal, and the contract it becomes, with its milestones."""

    id: str
    marketplace_id: str
    job_id: str
    job_title: str
    customer_id: str
    customer_email: str
    customer_name: str
    freelancer_id: str
    freelancer_email: str
    freelancer_name: str
    freelancer_country: str | None
    cover_letter: str
    state: ContractState
    settings_version: int
    settings: MarketplaceSettings
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    milestones: list[Milestone] = field(default_factory=list)
    events: list[Change] = field(default_factory=list)
    new_messages: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        for milestone in self.milestones:
            milestone.contract = self

    # --- what the rules read ---------------------------------------------------------------

    @property
    def workflow(self) -> WorkflowSettings:
        """The part of the pinned settings the workflow rules read."""
        pinned = self.settings
        return WorkflowSettings(
            milestone_creator=pinned.milestone_creator,
            skip_freelancer_approval=pinned.skip_freelancer_approval,
            allow_delete_until_paid=pinned.allow_delete_until_paid,
            charge_on_freelancer_approval=pinned.charge_on_freelancer_approval,
            holding_limit_fallback=pinned.holding_limit_fallback,
        )

    def context(self, role: ActorRole, milestone: MilestoneCore | None = None) -> Context:
        """What the rules look at when ``role`` acts on this contract (or ``milestone``)."""
        return Context(
            state=None if milestone is None else milestone.state,  # type: ignore[arg-type]
            contract=self.state,
            settings=self.workflow,
            actor=role,
            refund_requested=milestone is not None and milestone.refund_requested,
            chargeback_open=milestone is not None and milestone.chargeback_at is not None,
            split_ordered=milestone is not None and milestone.split_to_freelancer is not None,
            money_in_flight=any(one.state in MONEY_IN_FLIGHT for one in self.milestones),
        )

    def actions(self, role: ActorRole) -> list[str]:
        """The contract's actions ``role`` may take now (a front end shows exactly these)."""
        ctx = self.context(role)
        return [
            name
            for name, commands in CONTRACT_ACTIONS.items()
            if any(rules.allowed(command, ctx) for command in commands)
        ]

    def parties(self) -> dict[str, Any]:
        """The fields every proposal/contract event carries."""
        return {
            "marketplace_id": self.marketplace_id,
            "contract_id": self.id,
            "job_id": self.job_id,
            "job_title": self.job_title,
            "settings_version": self.settings_version,
            "customer": Party(
                user_id=self.customer_id, email=self.customer_email, name=self.customer_name
            ),
            "freelancer": Party(
                user_id=self.freelancer_id, email=self.freelancer_email, name=self.freelancer_name
            ),
        }

    def visible_to(self, caller: Caller) -> bool:
        """A party sees its own contracts; an operator (or a service) its marketplace's."""
        if self.marketplace_id != caller.marketplace_id:
            return False
        if caller.role == "customer":
            return self.customer_id == caller.user_id
        if caller.role == "freelancer":
            return self.freelancer_id == caller.user_id
        return caller.role in ("operator", "system", "payments")

    def milestone(self, milestone_id: str) -> Milestone:
        """One of this contract's milestones."""
        for milestone in self.milestones:
            if milestone.id == milestone_id:
                return milestone
        raise NotFound("milestone.not_found", "No such milestone on this contract.")

    # --- the contract's rows ---------------------------------------------------------------

    def _move(self, command: Command, caller: Caller, now: datetime, **facts: Any) -> None:
        row = rules.decide(command, self.context(caller.role))
        previous = self.state
        self.state = row.next_state(previous)  # type: ignore[assignment]
        self.updated_at = now
        if self.state == "live":
            self.started_at = now
        elif self.state != "proposal":
            self.ended_at = now
        self._record(row, caller, now, previous, facts)

    def _record(
        self,
        row: rules.Row,
        caller: Caller,
        now: datetime,
        previous: str | None,
        facts: dict[str, Any],
    ) -> None:
        values = {**self.parties(), **facts}
        published = [build_event(cls, values) for cls in row.events]
        self.events.append(Change(row.command, caller, previous, self.state, None, published, now))

    @classmethod
    def propose(
        cls,
        caller: Caller,
        now: datetime,
        *,
        job: Job,
        freelancer: Party,
        country: str | None,
        cover_letter: str,
        settings_version: int,
        settings: MarketplaceSettings,
    ) -> Contract:
        """A freelancer's proposal on ``job``: a contract pinned to the current settings."""
        contract = cls(
            id=new_id("ct"),
            marketplace_id=job.marketplace_id,
            job_id=job.id,
            job_title=job.title,
            customer_id=job.customer_id,
            customer_email=job.customer_email,
            customer_name=job.customer_name,
            freelancer_id=freelancer.user_id,
            freelancer_email=freelancer.email,
            freelancer_name=freelancer.name,
            freelancer_country=country,
            cover_letter=cover_letter,
            state="proposal",
            settings_version=settings_version,
            settings=settings,
            created_at=now,
            updated_at=now,
        )
        row = rules.decide(Command.SUBMIT_PROPOSAL, contract.context(caller.role))
        contract._record(row, caller, now, None, {"cover_letter": cover_letter})
        return contract

    def accept(self, caller: Caller, now: datetime) -> None:
        """The customer accepts the proposal: the contract goes live ("Current Jobs"). With
        charge-on-approval, every milestone the freelancer approved meanwhile is charged
        now, through the pay row (decision 31)."""
        self._move(Command.ACCEPT, caller, now, started_by=caller.actor)
        if self.workflow.charge_on_freelancer_approval:
            for milestone in self.milestones:
                if milestone.state == "approved":
                    milestone.pay(caller, now, trigger="contract_started")

    def decline(self, caller: Caller, now: datetime, reason: str | None) -> None:
        """The customer declines the proposal."""
        self._move(Command.DECLINE, caller, now, declined_by=caller.actor, reason=reason)

    def withdraw(self, caller: Caller, now: datetime, reason: str | None) -> None:
        """The freelancer withdraws the proposal."""
        self._move(Command.WITHDRAW, caller, now, withdrawn_by=caller.actor, reason=reason)

    def end(self, caller: Caller, now: datetime) -> None:
        """Either party ends the live contract once no milestone has money in flight."""
        self._move(Command.END, caller, now, ended_by=caller.actor)

    def add_milestone(
        self, caller: Caller, now: datetime, title: str, description: str, amount: int
    ) -> Milestone:
        """A milestone ("Add Task" in customer mode), in the state the table gives it."""
        row = rules.decide(Command.CREATE, self.context(caller.role))
        milestone = Milestone(
            id=new_id("ms"),
            contract_id=self.id,
            marketplace_id=self.marketplace_id,
            title=title,
            description=description,
            amount=amount,
            currency=self.settings.currency,
            state=row.target,
            version=1,
            creator_role=caller.role,
            created_at=now,
            updated_at=now,
        )
        milestone.contract = self
        self.milestones.append(milestone)
        milestone.record(row, caller, now, None, description=description, created_by=caller.role)
        return milestone

    def post_message(
        self, caller: Caller, now: datetime, body: str, milestone_id: str | None = None
    ) -> Message:
        """A party writes in the thread (optionally about one of its milestones)."""
        if caller.role not in ("customer", "freelancer"):
            raise Refused("auth.wrong_role", "Only a party to the contract can post messages.")
        if milestone_id is not None:
            self.milestone(milestone_id)
        message = Message(
            new_id("msg"), self.id, milestone_id, caller.user_id, caller.role, body, now
        )
        self.new_messages.append(message)
        event = MessagePosted(
            marketplace_id=self.marketplace_id,
            contract_id=self.id,
            message_id=message.id,
            milestone_id=milestone_id,
            author=caller.actor,
            body=body,
        )
        self.events.append(
            Change("post_message", caller, self.state, self.state, None, [event], now, False)
        )
        return message
