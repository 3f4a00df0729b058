"""The operators' dispute queue and its resolution."""

from __future__ import annotations

from typing import Literal

from cairn_chassis.http import Offset
from fastapi import APIRouter

from cairn_contracts.adapters import views
from cairn_contracts.domain.errors import Refused
from cairn_contracts.entrypoints.bodies import ResolveIn
from cairn_contracts.entrypoints.deps import CallerDep, DatabaseDep, Limit, UnitOfWorkDep
from cairn_contracts.entrypoints.schemas import DisputePublic, Page
from cairn_contracts.service import disputes

router = APIRouter(prefix="/v1/disputes", tags=["disputes"])


@router.get("", summary="The marketplace's disputes (operators)")
async def get_disputes(
    db: DatabaseDep,
    caller: CallerDep,
    status: Literal["open", "resolved"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[DisputePublic]:
    rows = await views.list_disputes(db, caller, status, limit=limit, offset=offset)
    return Page.of([DisputePublic.model_validate(dispute) for dispute in rows], limit, offset)


@router.post(
    "/{dispute_id}/resolve", summary="Resolve a dispute: release, refund or split (operators)"
)
async def resolve(
    dispute_id: str, body: ResolveIn, uow: UnitOfWorkDep, caller: CallerDep
) -> DisputePublic:
    if caller.role != "operator":
        raise Refused("auth.wrong_role", "Only an operator can resolve disputes.")
    dispute = await disputes.resolve(
        uow, caller, dispute_id, body.outcome, body.amount_to_freelancer, body.note
    )
    return DisputePublic.model_validate(dispute)
