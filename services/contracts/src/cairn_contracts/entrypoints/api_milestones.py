"""Milestones: add, read (with its ETag), edit (If-Match), delete, each workflow command,
and the history. Every answer is the milestone as the caller may see it, with its
``actions`` and its version as the ETag."""

from __future__ import annotations

from typing import Annotated

from cairn_chassis.errors import Problem
from fastapi import APIRouter, Header, Response

from cairn_contracts.adapters import views
from cairn_contracts.domain.model import Caller, Milestone
from cairn_contracts.entrypoints.bodies import (
    ApproveIn,
    ChangesIn,
    DisputeIn,
    MilestoneIn,
    MilestonePatch,
    RefundAnswerIn,
)
from cairn_contracts.entrypoints.deps import CallerDep, DatabaseDep, UnitOfWorkDep
from cairn_contracts.entrypoints.schemas import HistoryPublic, MilestonePublic
from cairn_contracts.service import milestones

router = APIRouter(prefix="/v1", tags=["milestones"])


def public(milestone: Milestone, caller: Caller, response: Response) -> MilestonePublic:
    """The milestone for ``caller``, its version as the ETag (what If-Match sends back)."""
    response.headers["ETag"] = f'"{milestone.version}"'
    return MilestonePublic.of(milestone, viewer_role=caller.role)


def expected_version(if_match: str | None) -> int:
    """The version an If-Match names."""
    if if_match is None:
        raise Problem(
            428,
            "milestone.version_required",
            "Send If-Match with the milestone's version (its ETag).",
        )
    try:
        return int(if_match.strip().strip("W/").strip('"'))
    except ValueError as exc:
        raise Problem(
            400, "milestone.bad_if_match", 'If-Match must be the milestone\'s version, e.g. "3".'
        ) from exc


@router.post(
    "/contracts/{contract_id}/milestones",
    status_code=201,
    summary="Add a milestone (freelancer mode) or task (customer mode: 'Add Task')",
)
async def create_milestone(
    contract_id: str, body: MilestoneIn, uow: UnitOfWorkDep, caller: CallerDep, response: Response
) -> MilestonePublic:
    milestone = await milestones.create(
        uow, caller, contract_id, body.title, body.description, body.amount
    )
    return public(milestone, caller, response)


@router.get("/milestones/{milestone_id}", summary="One milestone; its ETag is its version")
async def get_milestone(
    milestone_id: str, uow: UnitOfWorkDep, caller: CallerDep, response: Response
) -> MilestonePublic:
    return public(await milestones.get(uow, caller, milestone_id), caller, response)


@router.patch(
    "/milestones/{milestone_id}",
    summary="Edit an unpaid milestone; needs If-Match with its version",
)
async def edit_milestone(
    milestone_id: str,
    body: MilestonePatch,
    uow: UnitOfWorkDep,
    caller: CallerDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> MilestonePublic:
    version = expected_version(if_match)
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise Problem(
            422, "milestone.nothing_to_change", "Send at least one of title, description, amount."
        )
    milestone = await milestones.edit(uow, caller, milestone_id, version, changes)
    return public(milestone, caller, response)


@router.delete(
    "/milestones/{milestone_id}", summary="Delete an unpaid milestone (where the settings allow)"
)
async def delete_milestone(
    milestone_id: str, uow: UnitOfWorkDep, caller: CallerDep, response: Response
) -> MilestonePublic:
    return public(await milestones.delete(uow, caller, milestone_id), caller, response)


@router.post(
    "/milestones/{milestone_id}/send-for-approval",
    summary="Send a task to the freelancer to review (customer)",
)
async def send_for_approval(
    milestone_id: str, uow: UnitOfWorkDep, caller: CallerDep, response: Response
) -> MilestonePublic:
    return public(await milestones.send_for_approval(uow, caller, milestone_id), caller, response)


@router.post(
    "/milestones/{milestone_id}/approve",
    summary="Approve the task version you reviewed (freelancer)",
)
async def approve(
    milestone_id: str, body: ApproveIn, uow: UnitOfWorkDep, caller: CallerDep, response: Response
) -> MilestonePublic:
    milestone = await milestones.approve(uow, caller, milestone_id, body.version)
    return public(milestone, caller, response)


@router.post(
    "/milestones/{milestone_id}/request-changes",
    summary="Ask the customer to amend a task (freelancer)",
)
async def request_changes(
    milestone_id: str, body: ChangesIn, uow: UnitOfWorkDep, caller: CallerDep, response: Response
) -> MilestonePublic:
    milestone = await milestones.request_changes(uow, caller, milestone_id, body.message)
    return public(milestone, caller, response)


@router.post(
    "/milestones/{milestone_id}/pay", summary="Pay an approved milestone into escrow (customer)"
)
async def pay(
    milestone_id: str, uow: UnitOfWorkDep, caller: CallerDep, response: Response
) -> MilestonePublic:
    return public(await milestones.pay(uow, caller, milestone_id), caller, response)


@router.post("/milestones/{milestone_id}/complete", summary="Mark the work complete (freelancer)")
async def complete(
    milestone_id: str, uow: UnitOfWorkDep, caller: CallerDep, response: Response
) -> MilestonePublic:
    return public(await milestones.complete(uow, caller, milestone_id), caller, response)


@router.post(
    "/milestones/{milestone_id}/release",
    summary="Approve the work and release the money (customer)",
)
async def release(
    milestone_id: str, uow: UnitOfWorkDep, caller: CallerDep, response: Response
) -> MilestonePublic:
    return public(await milestones.release(uow, caller, milestone_id), caller, response)


@router.post(
    "/milestones/{milestone_id}/refund",
    summary="Give the money back to the customer (freelancer)",
)
async def refund(
    milestone_id: str, uow: UnitOfWorkDep, caller: CallerDep, response: Response
) -> MilestonePublic:
    return public(await milestones.refund(uow, caller, milestone_id), caller, response)


@router.post("/milestones/{milestone_id}/dispute", summary="Dispute the work (customer)")
async def dispute(
    milestone_id: str, body: DisputeIn, uow: UnitOfWorkDep, caller: CallerDep, response: Response
) -> MilestonePublic:
    milestone = await milestones.dispute(uow, caller, milestone_id, body.reason)
    return public(milestone, caller, response)


@router.post(
    "/milestones/{milestone_id}/request-refund",
    summary="Ask the freelancer for a refund (customer)",
)
async def request_refund(
    milestone_id: str, body: DisputeIn, uow: UnitOfWorkDep, caller: CallerDep, response: Response
) -> MilestonePublic:
    milestone = await milestones.request_refund(uow, caller, milestone_id, body.reason)
    return public(milestone, caller, response)


@router.post(
    "/milestones/{milestone_id}/refund-request/answer",
    summary="Accept (refund) or decline (dispute) a refund request (freelancer)",
)
async def answer_refund(
    milestone_id: str,
    body: RefundAnswerIn,
    uow: UnitOfWorkDep,
    caller: CallerDep,
    response: Response,
) -> MilestonePublic:
    milestone = await milestones.answer_refund_request(
        uow, caller, milestone_id, body.accept, body.message
    )
    return public(milestone, caller, response)


@router.get("/milestones/{milestone_id}/history", summary="Every transition with actor and time")
async def get_history(milestone_id: str, db: DatabaseDep, caller: CallerDep) -> list[HistoryPublic]:
    rows = await views.milestone_history(db, caller, milestone_id)
    return [HistoryPublic.of(row) for row in rows]
