"""What every use case shares: who may see what, pinned settings, event + history writing."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from cairn_chassis.db import locked
from cairn_chassis.outbox import add_event, utcnow
from cairn_schemas.base import Actor, Event, MilestoneEvent, Party
from cairn_schemas.settings import MarketplaceSettings
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_contracts.adapters.tables import (
    ContractHistoryRow,
    ContractRow,
    HistoryRow,
    MilestoneRow,
)
from cairn_contracts.domain.errors import NotFound
from cairn_contracts.domain.rules import ActorRole, WorkflowSettings

SOURCE = "/cairn/contracts"


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


ME = TypeVar("ME", bound=MilestoneEvent)


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


def new_id(prefix: str) -> str:
    """A readable unique id, e.g. ``ms_3f2a...``."""
    return f"{prefix}_{uuid.uuid4().hex}"


def publish(session: AsyncSession, event: Event) -> str:
    """Write ``event`` to the outbox in the caller's transaction."""
    return add_event(session, event, source=SOURCE)


def pinned_settings(contract: ContractRow) -> MarketplaceSettings:
    """The settings version the contract started with."""
    return MarketplaceSettings.model_validate(json.loads(contract.settings))


def workflow_settings(contract: ContractRow) -> WorkflowSettings:
    """The part of the pinned settings the workflow rules read."""
    s = pinned_settings(contract)
    return WorkflowSettings(
        milestone_creator=s.milestone_creator,
        skip_freelancer_approval=s.skip_freelancer_approval,
        allow_delete_until_paid=s.allow_delete_until_paid,
        charge_on_freelancer_approval=s.charge_on_freelancer_approval,
        holding_limit_fallback=s.holding_limit_fallback,
    )


def parties(contract: ContractRow) -> dict[str, Any]:
    """The fields every proposal/contract event carries."""
    return {
        "marketplace_id": contract.marketplace_id,
        "contract_id": contract.id,
        "job_id": contract.job_id,
        "job_title": contract.job_title,
        "customer": Party(
            user_id=contract.customer_id, email=contract.customer_email, name=contract.customer_name
        ),
        "freelancer": Party(
            user_id=contract.freelancer_id,
            email=contract.freelancer_email,
            name=contract.freelancer_name,
        ),
    }


def milestone_event(cls: type[ME], m: MilestoneRow, actor: Actor, **extra: Any) -> ME:
    """A milestone event carrying the milestone's snapshot after the change."""
    return cls(
        marketplace_id=m.marketplace_id,
        contract_id=m.contract_id,
        milestone_id=m.id,
        title=m.title,
        amount=m.amount,
        currency=m.currency,
        version=m.version,
        state=m.state,
        actor=actor,
        **extra,
    )


def can_see(caller: Caller, contract: ContractRow) -> bool:
    """A party sees its own contracts; an operator sees its marketplace's."""
    if contract.marketplace_id != caller.marketplace_id:
        return False
    if caller.role == "customer":
        return contract.customer_id == caller.user_id
    if caller.role == "freelancer":
        return contract.freelancer_id == caller.user_id
    return caller.role in ("operator", "system", "payments")


async def load_contract(
    session: AsyncSession, caller: Caller, contract_id: str, *, lock: bool = False
) -> ContractRow:
    """The contract if the caller may see it, else 404 (never 403: no existence leak)."""
    query = select(ContractRow).where(ContractRow.id == contract_id)
    if lock:
        query = locked(query)
    contract = (await session.exec(query)).first()
    if contract is None or not can_see(caller, contract):
        raise NotFound("contract.not_found", "No such contract.")
    return contract


async def load_milestone(
    session: AsyncSession, caller: Caller, milestone_id: str
) -> tuple[ContractRow, MilestoneRow]:
    """The milestone and its contract, both locked for the transaction (per-contract order)."""
    m = (await session.exec(select(MilestoneRow).where(MilestoneRow.id == milestone_id))).first()
    if m is None:
        raise NotFound("milestone.not_found", "No such milestone.")
    try:
        contract = await load_contract(session, caller, m.contract_id, lock=True)
    except NotFound as exc:
        # Same answer as for a milestone that does not exist: no existence leak.
        raise NotFound("milestone.not_found", "No such milestone.") from exc
    # The session already holds the unlocked read above: the locked read refreshes it.
    m = (
        await session.exec(locked(select(MilestoneRow).where(MilestoneRow.id == milestone_id)))
    ).one()
    return contract, m


def record_contract_history(
    session: AsyncSession,
    contract: ContractRow,
    command: str,
    caller: Caller,
    from_state: str | None,
    event_id: str | None,
) -> None:
    """Append the contract's transition to its history (same transaction)."""
    session.add(
        ContractHistoryRow(
            contract_id=contract.id,
            command=command,
            actor_id=caller.user_id,
            actor_role=caller.role,
            from_state=from_state,
            to_state=contract.state,
            event_id=event_id,
            at=utcnow(),
        )
    )


def record_history(
    session: AsyncSession,
    m: MilestoneRow,
    command: str,
    caller: Caller,
    from_state: str | None,
    event_id: str | None,
) -> None:
    """Append the transition to the milestone's history."""
    session.add(
        HistoryRow(
            milestone_id=m.id,
            contract_id=m.contract_id,
            command=command,
            actor_id=caller.user_id,
            actor_role=caller.role,
            from_state=from_state,
            to_state=m.state,
            version=m.version,
            event_id=event_id,
            at=utcnow(),
        )
    )
