"""The read side: lists and histories straight from the tables (no aggregate changes,
no lock). Each applies the same visibility as the commands."""

from __future__ import annotations

from cairn_chassis.db import Database
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_contracts.adapters.repository import contract_from_rows
from cairn_contracts.adapters.tables import (
    ContractHistoryRow,
    ContractRow,
    DisputeRow,
    HistoryRow,
    JobRow,
    MessageRow,
    MilestoneRow,
)
from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.domain.model import Caller, Contract


async def _with_milestones(session: AsyncSession, rows: list[ContractRow]) -> list[Contract]:
    ids = [row.id for row in rows]
    milestones = (
        await session.exec(
            select(MilestoneRow)
            .where(col(MilestoneRow.contract_id).in_(ids))
            .order_by(col(MilestoneRow.created_at), col(MilestoneRow.id))
        )
    ).all()
    return [
        contract_from_rows(row, [one for one in milestones if one.contract_id == row.id])
        for row in rows
    ]


async def _visible_contract(session: AsyncSession, caller: Caller, contract_id: str) -> None:
    row = (await session.exec(select(ContractRow).where(ContractRow.id == contract_id))).first()
    if row is None or not contract_from_rows(row, []).visible_to(caller):
        raise NotFound("contract.not_found", "No such contract.")


async def list_proposals(db: Database, caller: Caller, job_id: str) -> list[Contract]:
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
        return await _with_milestones(session, list(rows.all()))


async def list_contracts(
    db: Database, caller: Caller, status: str | None, *, limit: int, offset: int
) -> list[Contract]:
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
        rows = list((await session.exec(query.offset(offset).limit(limit))).all())
        return await _with_milestones(session, rows)


async def contract_history(
    db: Database, caller: Caller, contract_id: str
) -> list[ContractHistoryRow]:
    """Every transition of a contract, oldest first (its parties and operators)."""
    async with db.transaction() as session:
        await _visible_contract(session, caller, contract_id)
        rows = await session.exec(
            select(ContractHistoryRow)
            .where(ContractHistoryRow.contract_id == contract_id)
            .order_by(col(ContractHistoryRow.id))
        )
        return list(rows.all())


async def milestone_history(db: Database, caller: Caller, milestone_id: str) -> list[HistoryRow]:
    """Every transition of a milestone, oldest first."""
    async with db.transaction() as session:
        milestone = (
            await session.exec(select(MilestoneRow).where(MilestoneRow.id == milestone_id))
        ).first()
        try:
            if milestone is None:
                raise NotFound("milestone.not_found", "No such milestone.")
            await _visible_contract(session, caller, milestone.contract_id)
        except NotFound as exc:
            raise NotFound("milestone.not_found", "No such milestone.") from exc
        rows = await session.exec(
            select(HistoryRow)
            .where(HistoryRow.milestone_id == milestone_id)
            .order_by(col(HistoryRow.id))
        )
        return list(rows.all())


async def list_messages(
    db: Database, caller: Caller, contract_id: str, *, limit: int, offset: int
) -> list[MessageRow]:
    """The thread, oldest first."""
    async with db.transaction() as session:
        await _visible_contract(session, caller, contract_id)
        rows = await session.exec(
            select(MessageRow)
            .where(MessageRow.contract_id == contract_id)
            .order_by(col(MessageRow.created_at), col(MessageRow.id))
            .offset(offset)
            .limit(limit)
        )
        return list(rows.all())


async def list_disputes(
    db: Database, caller: Caller, status: str | None, *, limit: int, offset: int
) -> list[DisputeRow]:
    """Operators: the marketplace's disputes, oldest first."""
    if caller.role != "operator":
        raise Refused("auth.wrong_role", "Only an operator can list disputes.")
    async with db.transaction() as session:
        query = select(DisputeRow).where(DisputeRow.marketplace_id == caller.marketplace_id)
        if status:
            query = query.where(DisputeRow.status == status)
        rows = await session.exec(
            query.order_by(col(DisputeRow.created_at)).offset(offset).limit(limit)
        )
        return list(rows.all())


async def contract(db: Database, contract_id: str) -> Contract | None:
    """A contract with its milestones as committed now (no lock)."""
    async with db.transaction() as session:
        row = (await session.exec(select(ContractRow).where(ContractRow.id == contract_id))).first()
        return None if row is None else (await _with_milestones(session, [row]))[0]
