"""Loading what a caller may act on: a party sees only its own contracts, an operator its
marketplace's; anything else is "not found" (never "forbidden": no existence leak)."""

from __future__ import annotations

from cairn_contracts.domain.errors import NotFound
from cairn_contracts.domain.model import Caller, Contract, Milestone
from cairn_contracts.service.unit_of_work import UnitOfWork


async def contract_for(
    uow: UnitOfWork, caller: Caller, contract_id: str, *, lock: bool = True
) -> Contract:
    """The contract if the caller may see it (locked for a command)."""
    contract = await uow.contracts.get(contract_id, lock=lock)
    if contract is None or not contract.visible_to(caller):
        raise NotFound("contract.not_found", "No such contract.")
    return contract


async def milestone_for(
    uow: UnitOfWork, caller: Caller, milestone_id: str, *, lock: bool = True
) -> Milestone:
    """The milestone (with its contract) if the caller may see it."""
    contract = await uow.contracts.get_by_milestone(milestone_id, lock=lock)
    if contract is None or not contract.visible_to(caller):
        raise NotFound("milestone.not_found", "No such milestone.")
    return contract.milestone(milestone_id)
