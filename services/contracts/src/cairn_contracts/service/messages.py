"""A contract's message thread."""

from __future__ import annotations

from cairn_contracts.domain.model import Caller
from cairn_contracts.domain.records import Message
from cairn_contracts.service.access import contract_for
from cairn_contracts.service.unit_of_work import UnitOfWork


async def post_message(
    uow: UnitOfWork, caller: Caller, contract_id: str, body: str, milestone_id: str | None
) -> Message:
    """A party writes in the thread (optionally about one milestone); the other is emailed."""
    async with uow:
        contract = await contract_for(uow, caller, contract_id)
        message = contract.post_message(caller, uow.now(), body, milestone_id)
        await uow.commit()
    return message
