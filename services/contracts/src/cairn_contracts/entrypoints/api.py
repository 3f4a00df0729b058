"""The contracts HTTP API (DESIGN §7): paths are part of the contract with front ends."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from cairn_chassis.auth import CurrentPrincipal, Principal
from cairn_chassis.db import Database
from cairn_chassis.errors import Problem
from cairn_chassis.http import Offset, create_app
from cairn_schemas.base import Party
from cairn_schemas.settings import MarketplaceSettings
from fastapi import APIRouter, FastAPI, Header, Query, Request, Response
from pydantic import BaseModel, ValidationError

from cairn_contracts.config import MIGRATIONS, Settings
from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.entrypoints.schemas import (
    ApproveIn,
    ChangesIn,
    ContractHistoryOut,
    ContractOut,
    DisputeIn,
    DisputeOut,
    HistoryOut,
    JobIn,
    JobOut,
    MessageIn,
    MessageOut,
    MilestoneIn,
    MilestoneOut,
    MilestonePatch,
    Page,
    ProposalIn,
    ReasonIn,
    RefundAnswerIn,
    ResolveIn,
    SettingsOut,
)
from cairn_contracts.service import contracts, marketplaces, messages, milestones
from cairn_contracts.service.common import Calendar, Caller

T = TypeVar("T")
router = APIRouter(prefix="/v1")
Limit = Annotated[int, Query(ge=1, le=100)]


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _caller(p: Principal) -> Caller:
    return Caller(user_id=p.user_id, marketplace_id=p.marketplace_id, role=p.role)


async def _run(fn: Callable[[], Awaitable[T]]) -> T:
    """Turn domain refusals into problem+json."""
    try:
        return await fn()
    except Refused as exc:
        raise Problem(exc.status, exc.code, exc.message) from exc
    except NotFound as exc:
        raise Problem(404, exc.code, exc.message) from exc


def _contact(p: Principal) -> tuple[str, str]:
    """The email and name the parties' events carry; a token without a usable email is
    refused here rather than failing the event's validation (a 500)."""
    name = p.name or p.email
    try:
        Party(user_id=p.user_id, email=p.email, name=name)
    except ValidationError as exc:
        raise Problem(
            422,
            "auth.contact_required",
            "Your access token carries no valid email address (claim 'email'); it is "
            "needed to tell you and the other party about this job.",
        ) from exc
    return p.email, name


def _page(items: list[T], limit: int, offset: int) -> Page[T]:
    return Page[T](
        items=items,
        limit=limit,
        offset=offset,
        next_offset=offset + limit if len(items) == limit else None,
    )


def _ms(m: Any, p: Principal, response: Response | None = None) -> MilestoneOut:
    if response is not None:
        response.headers["ETag"] = f'"{m.version}"'
    return MilestoneOut.of(m, viewer_role=p.role)


# --- marketplaces ---------------------------------------------------------------------------


@router.put(
    "/marketplaces/{marketplace_id}/settings",
    response_model=SettingsOut,
    tags=["marketplaces"],
    summary="Set a marketplace's settings (operators)",
)
async def put_settings(
    marketplace_id: str, body: MarketplaceSettings, request: Request, principal: CurrentPrincipal
) -> SettingsOut:
    if principal.role != "operator":
        raise Problem(403, "actor.wrong_role", "Only an operator can change settings.")
    version, s = await _run(
        lambda: marketplaces.put_settings(_db(request), _caller(principal), marketplace_id, body)
    )
    return SettingsOut(marketplace_id=marketplace_id, version=version, settings=s)


@router.get(
    "/marketplaces/{marketplace_id}/settings",
    response_model=SettingsOut,
    tags=["marketplaces"],
    summary="A marketplace's current settings",
)
async def get_settings(
    marketplace_id: str, request: Request, principal: CurrentPrincipal
) -> SettingsOut:
    version, s = await _run(
        lambda: marketplaces.get_settings(_db(request), _caller(principal), marketplace_id)
    )
    return SettingsOut(marketplace_id=marketplace_id, version=version, settings=s)


# --- jobs and proposals ---------------------------------------------------------------------


@router.post(
    "/jobs", status_code=201, response_model=JobOut, tags=["jobs"], summary="Post a job (customers)"
)
async def post_job(body: JobIn, request: Request, principal: CurrentPrincipal) -> JobOut:
    job = await _run(
        lambda: contracts.post_job(
            _db(request),
            _caller(principal),
            *_contact(principal),
            body.title,
            body.description,
        )
    )
    return JobOut.model_validate(job, from_attributes=True)


@router.post(
    "/jobs/{job_id}/proposals",
    status_code=201,
    response_model=ContractOut,
    tags=["jobs"],
    summary="Send a proposal on a job (freelancers)",
)
async def post_proposal(
    job_id: str, body: ProposalIn, request: Request, principal: CurrentPrincipal
) -> ContractOut:
    c = await _run(
        lambda: contracts.submit_proposal(
            _db(request),
            _caller(principal),
            *_contact(principal),
            job_id,
            body.cover_letter,
            body.country,
        )
    )
    return ContractOut.of(c, [], viewer_role=principal.role)


@router.get(
    "/jobs/{job_id}/proposals",
    response_model=list[ContractOut],
    tags=["jobs"],
    summary="The proposals on a job (its customer)",
)
async def get_proposals(
    job_id: str, request: Request, principal: CurrentPrincipal
) -> list[ContractOut]:
    rows = await _run(lambda: contracts.list_proposals(_db(request), _caller(principal), job_id))
    return [ContractOut.of(c) for c in rows]


# --- contracts ------------------------------------------------------------------------------


@router.get(
    "/contracts",
    response_model=Page[ContractOut],
    tags=["contracts"],
    summary="The caller's contracts: proposal = 'Proposals', live = 'Current Jobs'",
)
async def list_contracts(
    request: Request,
    principal: CurrentPrincipal,
    status: Literal["proposal", "live", "ended", "declined", "withdrawn"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ContractOut]:
    rows = await _run(
        lambda: contracts.list_contracts(
            _db(request), _caller(principal), status, limit=limit, offset=offset
        )
    )
    return _page([ContractOut.of(c) for c in rows], limit, offset)


@router.get(
    "/contracts/{contract_id}",
    response_model=ContractOut,
    tags=["contracts"],
    summary="One contract with its milestones",
)
async def get_contract(
    contract_id: str, request: Request, principal: CurrentPrincipal
) -> ContractOut:
    c, ms = await _run(
        lambda: contracts.get_contract(_db(request), _caller(principal), contract_id)
    )
    return ContractOut.of(c, ms, viewer_role=principal.role)


@router.get(
    "/contracts/{contract_id}/history",
    response_model=list[ContractHistoryOut],
    tags=["contracts"],
    summary="Every transition of the contract (proposal, live, ended…) with actor and time",
)
async def get_contract_history(
    contract_id: str, request: Request, principal: CurrentPrincipal
) -> list[ContractHistoryOut]:
    rows = await _run(lambda: contracts.history(_db(request), _caller(principal), contract_id))
    return [ContractHistoryOut.of(h) for h in rows]


@router.post(
    "/contracts/{contract_id}/accept",
    response_model=ContractOut,
    tags=["contracts"],
    summary="Accept a proposal: the contract goes live",
)
async def accept(contract_id: str, request: Request, principal: CurrentPrincipal) -> ContractOut:
    c = await _run(lambda: contracts.accept(_db(request), _caller(principal), contract_id))
    return ContractOut.of(c)


@router.post(
    "/contracts/{contract_id}/decline",
    response_model=ContractOut,
    tags=["contracts"],
    summary="Decline a proposal (customer)",
)
async def decline(
    contract_id: str, request: Request, principal: CurrentPrincipal, body: ReasonIn | None = None
) -> ContractOut:
    c = await _run(
        lambda: contracts.decline(
            _db(request), _caller(principal), contract_id, body.reason if body else None
        )
    )
    return ContractOut.of(c)


@router.post(
    "/contracts/{contract_id}/withdraw",
    response_model=ContractOut,
    tags=["contracts"],
    summary="Withdraw a proposal (freelancer)",
)
async def withdraw(
    contract_id: str, request: Request, principal: CurrentPrincipal, body: ReasonIn | None = None
) -> ContractOut:
    c = await _run(
        lambda: contracts.withdraw(
            _db(request), _caller(principal), contract_id, body.reason if body else None
        )
    )
    return ContractOut.of(c)


@router.post(
    "/contracts/{contract_id}/end",
    response_model=ContractOut,
    tags=["contracts"],
    summary="End a live contract (either party; no money in flight)",
)
async def end(contract_id: str, request: Request, principal: CurrentPrincipal) -> ContractOut:
    c = await _run(lambda: contracts.end(_db(request), _caller(principal), contract_id))
    return ContractOut.of(c)


@router.post(
    "/contracts/{contract_id}/messages",
    status_code=201,
    response_model=MessageOut,
    tags=["messages"],
    summary="Write in the contract's thread",
)
async def post_message(
    contract_id: str, body: MessageIn, request: Request, principal: CurrentPrincipal
) -> MessageOut:
    m = await _run(
        lambda: messages.post_message(
            _db(request), _caller(principal), contract_id, body.body, body.milestone_id
        )
    )
    return MessageOut.of(m)


@router.get(
    "/contracts/{contract_id}/messages",
    response_model=Page[MessageOut],
    tags=["messages"],
    summary="The contract's thread, oldest first",
)
async def get_messages(
    contract_id: str,
    request: Request,
    principal: CurrentPrincipal,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[MessageOut]:
    rows = await _run(
        lambda: messages.list_messages(
            _db(request), _caller(principal), contract_id, limit=limit, offset=offset
        )
    )
    return _page([MessageOut.of(m) for m in rows], limit, offset)


# --- milestones -----------------------------------------------------------------------------


@router.post(
    "/contracts/{contract_id}/milestones",
    status_code=201,
    response_model=MilestoneOut,
    tags=["milestones"],
    summary="Add a milestone (freelancer mode) or task (customer mode: 'Add Task')",
)
async def create_milestone(
    contract_id: str,
    body: MilestoneIn,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
) -> MilestoneOut:
    m = await _run(
        lambda: milestones.create(
            _db(request), _caller(principal), contract_id, body.title, body.description, body.amount
        )
    )
    return _ms(m, principal, response)


@router.patch(
    "/milestones/{milestone_id}",
    response_model=MilestoneOut,
    tags=["milestones"],
    summary="Edit an unpaid milestone; needs If-Match with its version",
)
async def edit_milestone(
    milestone_id: str,
    body: MilestonePatch,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    if_match: Annotated[str | None, Header()] = None,
) -> MilestoneOut:
    if if_match is None:
        raise Problem(
            428,
            "milestone.version_required",
            "Send If-Match with the milestone's version (its ETag).",
        )
    try:
        version = int(if_match.strip().strip("W/").strip('"'))
    except ValueError as exc:
        raise Problem(
            400, "milestone.bad_if_match", 'If-Match must be the milestone\'s version, e.g. "3".'
        ) from exc
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise Problem(
            422, "milestone.nothing_to_change", "Send at least one of title, description, amount."
        )
    m = await _run(
        lambda: milestones.edit(_db(request), _caller(principal), milestone_id, version, changes)
    )
    return _ms(m, principal, response)


@router.delete(
    "/milestones/{milestone_id}",
    response_model=MilestoneOut,
    tags=["milestones"],
    summary="Delete an unpaid milestone (where the settings allow)",
)
async def delete_milestone(
    milestone_id: str, request: Request, principal: CurrentPrincipal
) -> MilestoneOut:
    m = await _run(lambda: milestones.delete(_db(request), _caller(principal), milestone_id))
    return _ms(m, principal)


def _command(
    path: str,
    summary: str,
    fn: Callable[..., Awaitable[Any]],
    body: type[BaseModel] | None = None,
    fields: tuple[str, ...] = (),
    *,
    name: str | None = None,
) -> None:
    """Register ``POST /milestones/{id}/<path>``: one workflow command on one milestone.

    ``fn(db, caller, milestone_id, *args)`` runs it, ``args`` being ``fields`` of the
    request ``body``; the answer is the milestone as the caller may see it, with its ETag.
    """

    async def endpoint(
        milestone_id: str,
        request: Request,
        response: Response,
        principal: CurrentPrincipal,
        body: Any = None,
    ) -> MilestoneOut:
        args = [getattr(body, f) for f in fields]
        m = await _run(lambda: fn(_db(request), _caller(principal), milestone_id, *args))
        return _ms(m, principal, response)

    signature = inspect.signature(endpoint)
    params = [p for p in signature.parameters.values() if p.name != "body"]
    if body is not None:
        params.append(inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=body))
    endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=params, return_annotation=MilestoneOut
    )
    endpoint.__name__ = name or path.replace("-", "_")
    router.add_api_route(
        f"/milestones/{{milestone_id}}/{path}",
        endpoint,
        methods=["POST"],
        response_model=MilestoneOut,
        tags=["milestones"],
        summary=summary,
    )


_command(
    "send-for-approval",
    "Send a task to the freelancer to review (customer)",
    milestones.send_for_approval,
)
_command(
    "approve",
    "Approve the task version you reviewed (freelancer)",
    milestones.approve,
    ApproveIn,
    ("version",),
)
_command(
    "request-changes",
    "Ask the customer to amend a task (freelancer)",
    milestones.request_changes,
    ChangesIn,
    ("message",),
)
_command("pay", "Pay an approved milestone into escrow (customer)", milestones.pay)
_command("complete", "Mark the work complete (freelancer)", milestones.complete)
_command("release", "Approve the work and release the money (customer)", milestones.release)
_command("refund", "Give the money back to the customer (freelancer)", milestones.refund)
_command("dispute", "Dispute the work (customer)", milestones.dispute, DisputeIn, ("reason",))
_command(
    "request-refund",
    "Ask the freelancer for a refund (customer)",
    milestones.request_refund,
    DisputeIn,
    ("reason",),
)
_command(
    "refund-request/answer",
    "Accept (refund) or decline (dispute) a refund request (freelancer)",
    milestones.answer_refund_request,
    RefundAnswerIn,
    ("accept", "message"),
    name="answer_refund",
)


@router.get(
    "/milestones/{milestone_id}/history",
    response_model=list[HistoryOut],
    tags=["milestones"],
    summary="Every transition with actor and time",
)
async def get_history(
    milestone_id: str, request: Request, principal: CurrentPrincipal
) -> list[HistoryOut]:
    rows = await _run(lambda: milestones.history(_db(request), _caller(principal), milestone_id))
    return [HistoryOut.of(h) for h in rows]


# --- disputes -------------------------------------------------------------------------------


@router.get(
    "/disputes",
    response_model=Page[DisputeOut],
    tags=["disputes"],
    summary="The marketplace's disputes (operators)",
)
async def get_disputes(
    request: Request,
    principal: CurrentPrincipal,
    status: Literal["open", "resolved"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[DisputeOut]:
    rows = await _run(
        lambda: messages.list_disputes(
            _db(request), _caller(principal), status, limit=limit, offset=offset
        )
    )
    return _page([DisputeOut.of(d) for d in rows], limit, offset)


@router.post(
    "/disputes/{dispute_id}/resolve",
    response_model=DisputeOut,
    tags=["disputes"],
    summary="Resolve a dispute: release, refund or split (operators)",
)
async def resolve(
    dispute_id: str, body: ResolveIn, request: Request, principal: CurrentPrincipal
) -> DisputeOut:
    if principal.role != "operator":
        raise Problem(403, "actor.wrong_role", "Only an operator can resolve disputes.")
    d = await _run(
        lambda: milestones.resolve_dispute(
            _db(request),
            _caller(principal),
            dispute_id,
            body.outcome,
            body.amount_to_freelancer,
            body.note,
        )
    )
    return DisputeOut.of(d)


def create_api(settings: Settings) -> FastAPI:
    """The contracts service's ASGI app."""
    Calendar.day = timedelta(seconds=settings.day_seconds)
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    return create_app(
        settings,
        db,
        title="Cairn contracts",
        version="1.0.0",
        description="Marketplaces, jobs, proposals, contracts and the milestone workflow.",
        routers=[router],
        migrations=MIGRATIONS,
    )
