"""Milestone use cases: each loads the milestone under its contract's lock, gives the
aggregate the command and commits (the unit of work writes the history and the events)."""

from __future__ import annotations

from typing import Any

from cairn_contracts.domain.model import Caller, Milestone
from cairn_contracts.service.access import contract_for, milestone_for
from cairn_contracts.service.unit_of_work import UnitOfWork


async def create(
    uow: UnitOfWork, caller: Caller, contract_id: str, title: str, description: str, amount: int
) -> Milestone:
    """Add a milestone ("Add Task" in customer mode)."""
    async with uow:
        contract = await contract_for(uow, caller, contract_id)
        milestone = contract.add_milestone(caller, uow.now(), title, description, amount)
        await uow.commit()
    return milestone


async def get(uow: UnitOfWork, caller: Caller, milestone_id: str) -> Milestone:
    """One milestone, as the caller may see it."""
    async with uow:
        return await milestone_for(uow, caller, milestone_id, lock=False)


async def edit(
    uow: UnitOfWork, caller: Caller, milestone_id: str, if_match: int, changes: dict[str, Any]
) -> Milestone:
    """The creator edits an unpaid milestone; needs the current version (If-Match)."""
    async with uow:
        milestone = await milestone_for(uow, caller, milestone_id)
        milestone.edit(caller, uow.now(), if_match, changes)
        await uow.commit()
    return milestone


async def send_for_approval(uow: UnitOfWork, caller: Caller, milestone_id: str) -> Milestone:
    """The customer sends a task to the freelancer to review."""
    async with uow:
        milestone = await milestone_for(uow, caller, milestone_id)
        milestone.send_for_approval(caller, uow.now())
        await uow.commit()
    return milestone


async def approve(uow: UnitOfWork, caller: Caller, milestone_id: str, version: int) -> Milestone:
    """The freelancer approves the version they reviewed."""
    async with uow:
        milestone = await milestone_for(uow, caller, milestone_id)
        milestone.approve(caller, uow.now(), version)
        await uow.commit()
    return milestone


async def request_changes(
    uow: UnitOfWork, caller: Caller, milestone_id: str, message: str
) -> Milestone:
    """The freelancer asks for changes."""
    async with uow:
        milestone = await milestone_for(uow, caller, milestone_id)
        milestone.request_changes(caller, uow.now(), message)
        await uow.commit()
    return milestone


async def delete(uow: UnitOfWork, caller: Caller, milestone_id: str) -> Milestone:
    """The creator deletes an unpaid milestone where the settings allow it."""
    async with uow:
        milestone = await milestone_for(uow, caller, milestone_id)
        milestone.delete(caller, uow.now())
        await uow.commit()
    return milestone


async def pay(uow: UnitOfWork, caller: Caller, milestone_id: str) -> Milestone:
    """The customer pays an approved milestone: payments is asked to charge the card."""
    async with uow:
        milestone = await milestone_for(uow, caller, milestone_id)
        milestone.pay(caller, uow.now())
        await uow.commit()
    return milestone


async def complete(uow: UnitOfWork, caller: Caller, milestone_id: str) -> Milestone:
    """The freelancer marks the work complete."""
    async with uow:
        milestone = await milestone_for(uow, caller, milestone_id)
        milestone.complete(caller, uow.now())
        await uow.commit()
    return milestone


async def release(uow: UnitOfWork, caller: Caller, milestone_id: str) -> Milestone:
    """The customer approves the work: payments pays the freelancer."""
    async with uow:
        milestone = await milestone_for(uow, caller, milestone_id)
        milestone.release(caller, uow.now())
        await uow.commit()
    return milestone


async def dispute(uow: UnitOfWork, caller: Caller, milestone_id: str, reason: str) -> Milestone:
    """The customer disputes the work; operators decide."""
    async with uow:
        milestone = await milestone_for(uow, caller, milestone_id)
        milestone.open_dispute(caller, uow.now(), reason)
        await uow.commit()
    return milestone


async def request_refund(
    uow: UnitOfWork, caller: Caller, milestone_id: str, reason: str
) -> Milestone:
    """The customer asks the freelancer for the money back."""
    async with uow:
        milestone = await milestone_for(uow, caller, milestone_id)
        milestone.request_refund(caller, uow.now(), reason)
        await uow.commit()
    return milestone


async def answer_refund_request(
    uow: UnitOfWork, caller: Caller, milestone_id: str, accept: bool, message: str | None
) -> Milestone:
    """The freelancer accepts (refund) or declines (dispute) the customer's request."""
    async with uow:
        milestone = await milestone_for(uow, caller, milestone_id)
        milestone.answer_refund_request(caller, uow.now(), accept, message)
        await uow.commit()
    return milestone


async def refund(uow: UnitOfWork, caller: Caller, milestone_id: str) -> Milestone:
    """The freelancer gives the money back."""
    async with uow:
        milestone = await milestone_for(uow, caller, milestone_id)
        milestone.refund(caller, uow.now())
        await uow.commit()
    return milestone
