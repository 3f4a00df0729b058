"""A contract's message thread, and the operators' dispute queue."""

from __future__ import annotations

from cairn_chassis.db import Database
from cairn_schemas.events import MessagePosted
from sqlmodel import col, select

from cairn_contracts.adapters.tables import DisputeRow, MessageRow, MilestoneRow
from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.service.common import Caller, load_contract, new_id, publish


async def post_message(
    db: Database, caller: Caller, contract_id: str, body: str, milestone_id: str | None
) -> MessageRow:
    """A party writes in the thread (optionally about one milestone); the other is emailed."""
    if caller.role not in ("customer", "freelancer"):
        raise Refused(
            "actor.wrong_role", "Only a party to the contract can post messages.", status=403
        )
    async with db.transaction() as session:
        contract = await load_contract(session, caller, contract_id, lock=True)
        if milestone_id is not None:
            m = (
                await session.exec(select(MilestoneRow).where(MilestoneRow.id == milestone_id))
            ).first()
            if m is None or m.contract_id != contract_id:
                raise NotFound("milestone.not_found", "No such milestone on this contract.")
        row = MessageRow(
            id=new_id("msg"),
            contract_id=contract_id,
            milestone_id=milestone_id,
            author_id=caller.user_id,
            author_role=caller.role,
            body=body,
        )
        session.add(row)
        publish(
            session,
            MessagePosted(
                marketplace_id=contract.marketplace_id,
                contract_id=contract_id,
                message_id=row.id,
                milestone_id=milestone_id,
                author=caller.actor,
                body=body,
            ),
        )
        return row


async def list_messages(
    db: Database, caller: Caller, contract_id: str, *, limit: int, offset: int
) -> list[MessageRow]:
    """The thread, oldest first."""
    async with db.transaction() as session:
        await load_contract(session, caller, contract_id)
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
        raise Refused("actor.wrong_role", "Only an operator can list disputes.", status=403)
    async with db.transaction() as session:
        query = select(DisputeRow).where(DisputeRow.marketplace_id == caller.marketplace_id)
        if status:
            query = query.where(DisputeRow.status == status)
        rows = await session.exec(
            query.order_by(col(DisputeRow.created_at)).offset(offset).limit(limit)
        )
        return list(rows.all())
