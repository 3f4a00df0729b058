"""Jobs, proposals and contracts: proposal → live → ended (or declined / withdrawn)."""

from __future__ import annotations

from cairn_chassis.db import Database
from cairn_chassis.outbox import utcnow
from cairn_schemas.base import Party
from cairn_schemas.events import (
    ContractEnded,
    ContractStarted,
    JobPosted,
    ProposalDeclined,
    ProposalSubmitted,
    ProposalWithdrawn,
)
from sqlmodel import col, select

from cairn_contracts.adapters.tables import ContractHistoryRow, ContractRow, JobRow, MilestoneRow
from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.domain.rules import can_end_contract
from cairn_contracts.service.common import (
    Caller,
    load_contract,
    new_id,
    parties,
    publish,
    record_contract_history,
)
from cairn_contracts.service.marketplaces import current_settings
from cairn_contracts.service.milestones import charge_approved_on_start


def _require(caller: Caller, role: str, what: str) -> None:
    if caller.role != role:
        raise Refused("actor.wrong_role", f"Only the {role} can {what}.", status=403)


async def post_job(
    db: Database, caller: Caller, email: str, name: str, title: str, description: str
) -> JobRow:
    """A customer posts a job."""
    _require(caller, "customer", "post a job")
    async with db.transaction() as session:
        await current_settings(session, caller.marketplace_id)
        job = JobRow(
            id=new_id("job"),
            marketplace_id=caller.marketplace_id,
            customer_id=caller.user_id,
            customer_email=email,
            customer_name=name,
            title=title,
            description=description,
        )
        session.add(job)
        publish(
            session,
            JobPosted(
                marketplace_id=job.marketplace_id,
                job_id=job.id,
                title=title,
                description=description,
                customer=Party(user_id=caller.user_id, email=email, name=name),
            ),
        )
        return job


async def submit_proposal(
    db: Database,
    caller: Caller,
    email: str,
    name: str,
    job_id: str,
    cover_letter: str,
    country: str | None = None,
) -> ContractRow:
    """A freelancer proposes on a job: a contract in state ``proposal`` pinned to the
    marketplace's current settings."""
    _require(caller, "freelancer", "send a proposal")
    async with db.transaction() as session:
        job = (await session.exec(select(JobRow).where(JobRow.id == job_id))).first()
        if job is None or job.marketplace_id != caller.marketplace_id:
            raise NotFound("job.not_found", "No such job.")
        duplicate = (
            await session.exec(
                select(ContractRow).where(
                    ContractRow.job_id == job_id,
                    ContractRow.freelancer_id == caller.user_id,
                    col(ContractRow.state).in_(["proposal", "live"]),
                )
            )
        ).first()
        if duplicate is not None:
            raise Refused(
                "proposal.duplicate", "You already have an open proposal or contract on this job."
            )
        version, settings = await current_settings(session, caller.marketplace_id)
        contract = ContractRow(
            id=new_id("ct"),
            marketplace_id=job.marketplace_id,
            job_id=job.id,
            job_title=job.title,
            customer_id=job.customer_id,
            customer_email=job.customer_email,
            customer_name=job.customer_name,
            freelancer_id=caller.user_id,
            freelancer_email=email,
            freelancer_name=name,
            freelancer_country=country,
            cover_letter=cover_letter,
            state="proposal",
            settings_version=version,
            settings=settings.model_dump_json(),
        )
        session.add(contract)
        await session.flush()
        event_id = publish(
            session,
            ProposalSubmitted(
                **parties(contract), cover_letter=cover_letter, settings_version=version
            ),
        )
        record_contract_history(session, contract, "submit_proposal", caller, None, event_id)
        return contract


async def list_proposals(db: Database, caller: Caller, job_id: str) -> list[ContractRow]:
    """The proposals on a job ("Proposals"), for its customer (or an operator)."""
    async with db.transaction() as session:
        job = (await session.exec(select(JobRow).where(JobRow.id == job_id))).first()
        visible = (
            job is not None
            and job.marketplace_id == caller.marketplace_id
            and (
                caller.role == "operator"
                or (caller.role == "customer" and job.customer_id == caller.user_id)
            )
        )
        if not visible:
            raise NotFound("job.not_found", "No such job.")
        rows = await session.exec(
            select(ContractRow)
            .where(ContractRow.job_id == job_id, ContractRow.state == "proposal")
            .order_by(col(ContractRow.created_at))
        )
        return list(rows.all())


async def accept(db: Database, caller: Caller, contract_id: str) -> ContractRow:
    """The customer accepts a proposal: the contract goes live ("Current Jobs")."""
    _require(caller, "customer", "accept a proposal")
    async with db.transaction() as session:
        contract = await load_contract(session, caller, contract_id, lock=True)
        if contract.state != "proposal":
            raise Refused(
                "contract.not_proposal",
                f"Only a proposal can be accepted; this contract is {contract.state}.",
            )
        contract.state = "live"
        contract.started_at = contract.updated_at = utcnow()
        session.add(contract)
        event_id = publish(
            session,
            ContractStarted(
                **parties(contract),
                settings_version=contract.settings_version,
                started_by=caller.actor,
            ),
        )
        record_contract_history(session, contract, "accept", caller, "proposal", event_id)
        await charge_approved_on_start(session, contract, caller)
        return contract


async def decline(
    db: Database, caller: Caller, contract_id: str, reason: str | None
) -> ContractRow:
    """The customer declines a proposal."""
    _require(caller, "customer", "decline a proposal")
    async with db.transaction() as session:
        contract = await load_contract(session, caller, contract_id, lock=True)
        if contract.state != "proposal":
            raise Refused(
                "contract.not_proposal",
                f"Only a proposal can be declined; this contract is {contract.state}.",
            )
        contract.state = "declined"
        contract.ended_at = contract.updated_at = utcnow()
        session.add(contract)
        event_id = publish(
            session, ProposalDeclined(**parties(contract), declined_by=caller.actor, reason=reason)
        )
        record_contract_history(session, contract, "decline", caller, "proposal", event_id)
        return contract


async def withdraw(
    db: Database, caller: Caller, contract_id: str, reason: str | None
) -> ContractRow:
    """The freelancer withdraws a proposal."""
    _require(caller, "freelancer", "withdraw a proposal")
    async with db.transaction() as session:
        contract = await load_contract(session, caller, contract_id, lock=True)
        if contract.state != "proposal":
            raise Refused(
                "contract.not_proposal",
                f"Only a proposal can be withdrawn; this contract is {contract.state}.",
            )
        contract.state = "withdrawn"
        contract.ended_at = contract.updated_at = utcnow()
        session.add(contract)
        event_id = publish(
            session,
            ProposalWithdrawn(**parties(contract), withdrawn_by=caller.actor, reason=reason),
        )
        record_contract_history(session, contract, "withdraw", caller, "proposal", event_id)
        return contract


async def end(db: Database, caller: Caller, contract_id: str) -> ContractRow:
    """Either party ends a live contract once no milestone has money in flight."""
    if caller.role not in ("customer", "freelancer"):
        raise Refused("actor.wrong_role", "Only a party to the contract can end it.", status=403)
    async with db.transaction() as session:
        contract = await load_contract(session, caller, contract_id, lock=True)
        if contract.state != "live":
            raise Refused("contract.not_live", "Only a live contract can be ended.")
        states = (
            await session.exec(
                select(MilestoneRow.state).where(MilestoneRow.contract_id == contract_id)
            )
        ).all()
        if not can_end_contract(list(states)):  # type: ignore[arg-type]
            raise Refused(
                "contract.money_in_flight",
                "A milestone is being paid, is in escrow or is disputed; settle it "
                "before ending the contract.",
            )
        contract.state = "ended"
        contract.ended_at = contract.updated_at = utcnow()
        session.add(contract)
        event_id = publish(session, ContractEnded(**parties(contract), ended_by=caller.actor))
        record_contract_history(session, contract, "end", caller, "live", event_id)
        return contract


async def history(db: Database, caller: Caller, contract_id: str) -> list[ContractHistoryRow]:
    """Every transition of a contract, oldest first (its parties and operators)."""
    async with db.transaction() as session:
        await load_contract(session, caller, contract_id)
        rows = await session.exec(
            select(ContractHistoryRow)
            .where(ContractHistoryRow.contract_id == contract_id)
            .order_by(col(ContractHistoryRow.id))
        )
        return list(rows.all())


async def list_contracts(
    db: Database, caller: Caller, status: str | None, *, limit: int, offset: int
) -> list[ContractRow]:
    """The caller's own contracts (an operator: the marketplace's), newest first."""
    async with db.transaction() as session:
        query = select(ContractRow).where(ContractRow.marketplace_id == caller.marketplace_id)
        if caller.role == "customer":
            query = query.where(ContractRow.customer_id == caller.user_id)
        elif caller.role == "freelancer":
            query = query.where(ContractRow.freelancer_id == caller.user_id)
        if status is not None:
            query = query.where(ContractRow.state == status)
        query = query.order_by(col(ContractRow.created_at).desc(), col(ContractRow.id))
        return list((await session.exec(query.offset(offset).limit(limit))).all())


async def get_contract(
    db: Database, caller: Caller, contract_id: str
) -> tuple[ContractRow, list[MilestoneRow]]:
    """One contract with its milestones."""
    async with db.transaction() as session:
        contract = await load_contract(session, caller, contract_id)
        milestones = (
            await session.exec(
                select(MilestoneRow)
                .where(MilestoneRow.contract_id == contract_id)
                .order_by(col(MilestoneRow.created_at))
            )
        ).all()
        return contract, list(milestones)
