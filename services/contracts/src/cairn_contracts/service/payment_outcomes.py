"""Outcomes reported by the payments service, applied inside the consumer's inbox
transaction. An outcome of an older funding attempt, or one the table refuses (the
milestone moved past it: payments may report late or twice), changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.domain.model import Caller, Milestone
from cairn_contracts.service.unit_of_work import UnitOfWork

Apply = Callable[[Milestone, Caller, datetime], None]


def payments(marketplace_id: str) -> Caller:
    """The payments service, acting on a marketplace's milestones."""
    return Caller(user_id="payments", marketplace_id=marketplace_id, role="payments")


async def apply(
    uow: UnitOfWork,
    marketplace_id: str,
    milestone_id: str,
    outcome: Apply,
    *,
    attempt: int | None = None,
) -> Milestone | None:
    """Apply ``outcome(milestone, payments, now)``; None when it is stale or refused."""
    caller = payments(marketplace_id)
    async with uow:
        contract = await uow.contracts.get_by_milestone(milestone_id)
        if contract is None or not contract.visible_to(caller):
            raise NotFound("milestone.not_found", "No such milestone.")
        milestone = contract.milestone(milestone_id)
        if attempt is not None and attempt != milestone.funding_attempt:
            return None
        try:
            outcome(milestone, caller, uow.now())
        except Refused:
            return None
        await uow.commit()
    return milestone
