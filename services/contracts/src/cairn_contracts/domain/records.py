"""What the aggregates are made of besides themselves: who acts, how long a day is, the
changes they record (with the events each publishes), disputes and thread messages."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cairn_schemas.base import Actor, Event

from cairn_contracts.domain.states import ActorRole, Command

_ORDER = itertools.count()


def new_id(prefix: str) -> str:
    """A readable unique id, e.g. ``ms_3f2a...``."""
    return f"{prefix}_{uuid.uuid4().hex}"


class Calendar:
    """How long a "day" of the marketplace settings lasts.

    A day is a day (86,400 s) in production. End-to-end tests and demos shorten it
    (``CONTRACTS_DAY_SECONDS``) so that a 7-day refund deadline or a 14-day auto-release
    can be watched through the real processes without waiting a week; the API and the
    worker set it once at start from the same setting.
    """

    day = timedelta(days=1)

    @classmethod
    def days(cls, n: float) -> timedelta:
        """``n`` marketplace days."""
        return cls.day * n


@dataclass(frozen=True)
class Caller:
    """Who is acting: a signed-in party, an operator, a timer or the payments service."""

    user_id: str
    marketplace_id: str
    role: ActorRole

    @property
    def actor(self) -> Actor:
        """As the events name it."""
        return Actor(user_id=self.user_id, role=self.role)


@dataclass
class Change:
    """One thing that happened to an aggregate: the history row's facts and the events it
    publishes. The unit of work writes both at commit (the one place events are written);
    ``history=False`` for what is no transition (a reminder, a thread message)."""

    command: Command | str
    caller: Caller
    from_state: str | None
    to_state: str
    version: int | None
    published: list[Event]
    at: datetime
    history: bool = True
    order: int = field(default_factory=lambda: next(_ORDER))


def build_event(cls: type[Event], values: dict[str, Any]) -> Event:
    """``cls`` from the aggregate's snapshot and the command's facts: each event takes the
    fields it declares, so one row can publish several events from the same facts."""
    return cls(**{k: v for k, v in values.items() if k in cls.model_fields})


@dataclass
class Dispute:
    """A dispute over a milestone, and how an operator resolved it."""

    id: str
    marketplace_id: str
    contract_id: str
    milestone_id: str
    reason: str
    opened_by: str
    created_at: datetime
    status: str = "open"
    outcome: str | None = None
    amount_to_freelancer: int | None = None
    amount_to_customer: int | None = None
    note: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None


@dataclass
class Message:
    """A message in a contract's thread (a change request posts one too)."""

    id: str
    contract_id: str
    milestone_id: str | None
    author_id: str
    author_role: str
    body: str
    created_at: datetime


@dataclass
class Job:
    """A job a customer posted."""

    id: str
    marketplace_id: str
    customer_id: str
    customer_email: str
    customer_name: str
    title: str
    description: str
    created_at: datetime
