"""Operators resolve disputes: release, refund, or a split."""

from __future__ import annotations

from cairn_contracts.domain.errors import NotFound
from cairn_contracts.domain.milestone import Outcome
from cairn_contracts.domain.model import Caller
from cairn_contracts.domain.records import Dispute
from cairn_contracts.service.unit_of_work import UnitOfWork


async def resolve(
    uow: UnitOfWork,
    caller: Caller,
    dispute_id: str,
    outcome: Outcome,
    amount_to_freelancer: int | None,
    note: str,
) -> Dispute:
    """An operator resolves a dispute: release, refund, or a split adding up exactly."""
    async with uow:
        found = await uow.contracts.get_by_dispute(dispute_id)
        if found is None or not found[0].visible_to(caller) or found[1].dispute is None:
            raise NotFound("dispute.not_found", "No such dispute.")
        milestone = found[1]
        milestone.resolve_dispute(caller, uow.now(), outcome, amount_to_freelancer, note)
        await uow.commit()
    assert milestone.dispute is not None
    return milestone.dispute
