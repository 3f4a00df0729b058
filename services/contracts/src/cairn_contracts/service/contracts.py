"""Jobs, proposals and contracts: proposal → live → ended (or declined / withdrawn)."""

from __future__ import annotations

from cairn_schemas.base import Party
from cairn_schemas.events import JobPosted

from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.domain.model import Caller, Contract
from cairn_contracts.domain.records import Job, new_id
from cairn_contracts.service.access import contract_for
from cairn_contracts.service.marketplaces import current_settings
from cairn_contracts.service.unit_of_work import UnitOfWork


def _require(caller: Caller, role: str, what: str) -> None:
    if caller.role != role:
        raise Refused("auth.wrong_role", f"Only the {role} can {what}.")


async def post_job(
    uow: UnitOfWork, caller: Caller, contact: Party, title: str, description: str
) -> Job:
    """A customer posts a job."""
    _require(caller, "customer", "post a job")
    async with uow:
        await current_settings(uow, caller.marketplace_id)
        job = Job(
            new_id("job"), caller.marketplace_id, caller.user_id, contact.email, contact.name,
            title, description, uow.now(),
        )  # fmt: skip
        uow.jobs.add(job)
        uow.publish(
            JobPosted(
                marketplace_id=job.marketplace_id,
                job_id=job.id,
                title=title,
                description=description,
                customer=contact,
            )
        )
        await uow.commit()
    return job


async def submit_proposal(
    uow: UnitOfWork,
    caller: Caller,
    contact: Party,
    job_id: str,
    cover_letter: str,
    country: str | None = None,
) -> Contract:
    """A freelancer proposes on a job: a contract in state ``proposal`` pinned to the
    marketplace's current settings."""
    _require(caller, "freelancer", "send a proposal")
    async with uow:
        job = await uow.jobs.get(job_id)
        if job is None or job.marketplace_id != caller.marketplace_id:
            raise NotFound("job.not_found", "No such job.")
        if await uow.jobs.has_open_contract(job_id, caller.user_id):
            raise Refused(
                "proposal.duplicate", "You already have an open proposal or contract on this job."
            )
        version, settings = await current_settings(uow, caller.marketplace_id)
        contract = Contract.propose(
            caller, uow.now(), job=job, freelancer=contact, country=country,
            cover_letter=cover_letter, settings_version=version, settings=settings,
        )  # fmt: skip
        uow.contracts.add(contract)
        await uow.commit()
    return contract


async def get(uow: UnitOfWork, caller: Caller, contract_id: str) -> Contract:
    """One contract with its milestones."""
    async with uow:
        return await contract_for(uow, caller, contract_id, lock=False)


async def accept(uow: UnitOfWork, caller: Caller, contract_id: str) -> Contract:
    """The customer accepts a proposal: the contract goes live ("Current Jobs")."""
    async with uow:
        contract = await contract_for(uow, caller, contract_id)
        contract.accept(caller, uow.now())
        await uow.commit()
    return contract


async def decline(
    uow: UnitOfWork, caller: Caller, contract_id: str, reason: str | None
) -> Contract:
    """The customer declines a proposal."""
    async with uow:
        contract = await contract_for(uow, caller, contract_id)
        contract.decline(caller, uow.now(), reason)
        await uow.commit()
    return contract


async def withdraw(
    uow: UnitOfWork, caller: Caller, contract_id: str, reason: str | None
) -> Contract:
    """The freelancer withdraws a proposal."""
    async with uow:
        contract = await contract_for(uow, caller, contract_id)
        contract.withdraw(caller, uow.now(), reason)
        await uow.commit()
    return contract


async def end(uow: UnitOfWork, caller: Caller, contract_id: str) -> Contract:
    """Either party ends a live contract once no milestone has money in flight."""
    async with uow:
        contract = await contract_for(uow, caller, contract_id)
        contract.end(caller, uow.now())
        await uow.commit()
    return contract
