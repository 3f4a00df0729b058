"""A contract's message thread."""

from __future__ import annotations

from cairn_chassis.http import Offset
from fastapi import APIRouter

from cairn_contracts.adapters import views
from cairn_contracts.entrypoints.bodies import MessageIn
from cairn_contracts.entrypoints.deps import CallerDep, DatabaseDep, Limit, UnitOfWorkDep
from cairn_contracts.entrypoints.schemas import MessagePublic, Page
from cairn_contracts.service import messages

router = APIRouter(prefix="/v1/contracts", tags=["messages"])


@router.post("/{contract_id}/messages", status_code=201, summary="Write in the contract's thread")
async def post_message(
    contract_id: str, body: MessageIn, uow: UnitOfWorkDep, caller: CallerDep
) -> MessagePublic:
    message = await messages.post_message(uow, caller, contract_id, body.body, body.milestone_id)
    return MessagePublic.model_validate(message)


@router.get("/{contract_id}/messages", summary="The contract's thread, oldest first")
async def get_messages(
    contract_id: str, db: DatabaseDep, caller: CallerDep, limit: Limit = 50, offset: Offset = 0
) -> Page[MessagePublic]:
    rows = await views.list_messages(db, caller, contract_id, limit=limit, offset=offset)
    return Page.of([MessagePublic.model_validate(message) for message in rows], limit, offset)
