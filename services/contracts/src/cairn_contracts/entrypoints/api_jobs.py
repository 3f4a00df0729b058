"""Jobs and the proposals on them."""

from __future__ import annotations

from cairn_chassis.auth import CurrentPrincipal
from cairn_chassis.errors import Problem
from cairn_schemas.base import Party
from fastapi import APIRouter
from pydantic import ValidationError

from cairn_contracts.adapters import views
from cairn_contracts.entrypoints.bodies import JobIn, ProposalIn
from cairn_contracts.entrypoints.deps import CallerDep, DatabaseDep, UnitOfWorkDep
from cairn_contracts.entrypoints.schemas import ContractPublic, JobPublic
from cairn_contracts.service import contracts

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def contact(principal: CurrentPrincipal) -> Party:
    """The email and name the parties' events carry; a token without a usable email is
    refused here rather than failing the event's validation (a 500)."""
    try:
        return Party(
            user_id=principal.user_id,
            email=principal.email,
            name=principal.name or principal.email,
        )
    except ValidationError as exc:
        raise Problem(
            422,
            "auth.contact_required",
            "Your access token carries no valid email address (claim 'email'); it is "
            "needed to tell you and the other party about this job.",
        ) from exc


@router.post("", status_code=201, summary="Post a job (customers)")
async def post_job(
    body: JobIn, uow: UnitOfWorkDep, caller: CallerDep, principal: CurrentPrincipal
) -> JobPublic:
    job = await contracts.post_job(uow, caller, contact(principal), body.title, body.description)
    return JobPublic.model_validate(job)


@router.post(
    "/{job_id}/proposals", status_code=201, summary="Send a proposal on a job (freelancers)"
)
async def post_proposal(
    job_id: str,
    body: ProposalIn,
    uow: UnitOfWorkDep,
    caller: CallerDep,
    principal: CurrentPrincipal,
) -> ContractPublic:
    contract = await contracts.submit_proposal(
        uow, caller, contact(principal), job_id, body.cover_letter, body.country
    )
    return ContractPublic.of(contract, viewer_role=caller.role, with_milestones=True)


@router.get("/{job_id}/proposals", summary="The proposals on a job (its customer)")
async def get_proposals(job_id: str, db: DatabaseDep, caller: CallerDep) -> list[ContractPublic]:
    rows = await views.list_proposals(db, caller, job_id)
    return [ContractPublic.of(contract, viewer_role=caller.role) for contract in rows]
