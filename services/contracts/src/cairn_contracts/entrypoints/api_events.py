"""Live updates of a contract as Server-Sent Events (decision 33).

``GET /v1/contracts/{id}/events`` streams, to the contract's parties and its marketplace's
operators (the same rule as ``GET /v1/contracts/{id}``):

- ``event: snapshot`` first (unless resuming): the contract with its milestones;
- ``event: milestone`` / ``event: contract`` for each change, in order: the history row
  and the resource as it is now, with the caller's ``actions``.

Each event's ``id`` is a cursor; a client that reconnects with ``Last-Event-ID`` (browsers'
``EventSource`` do it by themselves) gets every change after it and no snapshot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from cairn_contracts.adapters import change_feed, views
from cairn_contracts.adapters.change_feed import ChangeFeed, Cursor
from cairn_contracts.adapters.tables import ContractHistoryRow, HistoryRow
from cairn_contracts.domain.model import Caller, Contract
from cairn_contracts.entrypoints.deps import CallerDep, DatabaseDep, UnitOfWorkDep
from cairn_contracts.entrypoints.schemas import (
    ContractChangePublic,
    ContractHistoryPublic,
    ContractPublic,
    HistoryPublic,
    MilestoneChangePublic,
    MilestonePublic,
)
from cairn_contracts.service import contracts

router = APIRouter(prefix="/v1/contracts", tags=["contracts"])
RETRY_MS = 2000


async def visible_contract(contract_id: str, uow: UnitOfWorkDep, caller: CallerDep) -> Contract:
    """The contract, if the caller may follow it (checked before the stream starts)."""
    return await contracts.get(uow, caller, contract_id)


def get_feed(request: Request) -> ChangeFeed:
    """The process's change feed (set up by ``create_api``)."""
    feed: ChangeFeed = request.app.state.change_feed
    return feed


def update(
    row: ContractHistoryRow | HistoryRow, now: Contract, caller: Caller
) -> ServerSentEvent | None:
    """The live update for one history row (None: a milestone no longer there)."""
    if isinstance(row, HistoryRow):
        milestone = next((one for one in now.milestones if one.id == row.milestone_id), None)
        if milestone is None:
            return None
        milestone_change = MilestoneChangePublic(
            change=HistoryPublic.of(row),
            milestone=MilestonePublic.of(milestone, viewer_role=caller.role),
        )
        return ServerSentEvent(event="milestone", data=milestone_change)
    contract_change = ContractChangePublic(
        change=ContractHistoryPublic.of(row),
        contract=ContractPublic.of(now, viewer_role=caller.role),
    )
    return ServerSentEvent(event="contract", data=contract_change)


@router.get(
    "/{contract_id}/events",
    response_class=EventSourceResponse,
    summary="Live updates of the contract and its milestones (Server-Sent Events)",
)
async def contract_events(
    contract: Annotated[Contract, Depends(visible_contract)],
    db: DatabaseDep,
    caller: CallerDep,
    feed: Annotated[ChangeFeed, Depends(get_feed)],
    last_event_id: Annotated[str | None, Header()] = None,
) -> AsyncIterator[ServerSentEvent]:
    cursor = Cursor.parse(last_event_id)
    if cursor is None:
        cursor = await change_feed.latest(db, contract.id)
        now = await views.contract(db, contract.id) or contract
        snapshot = ContractPublic.of(now, viewer_role=caller.role, with_milestones=True)
        yield ServerSentEvent(event="snapshot", id=str(cursor), data=snapshot, retry=RETRY_MS)
    wake = feed.subscribe(contract.id)
    try:
        while True:
            rows = await change_feed.changes_after(db, contract.id, cursor)
            if not rows:
                await feed.wait(wake)
                continue
            now = await views.contract(db, contract.id) or contract
            for row in rows:
                cursor = cursor.after(row)
                event = update(row, now, caller)
                if event is not None:
                    yield event.model_copy(update={"id": str(cursor)})
    finally:
        feed.unsubscribe(contract.id, wake)


STREAM_DESCRIPTION = (
    "A text/event-stream. `event: snapshot` (first, unless resuming): the contract with its "
    "milestones (ContractPublic). `event: milestone`: {change: the history row, milestone: "
    "MilestonePublic now}. `event: contract`: {change, contract: ContractPublic now}. Each "
    "`id` is a cursor: reconnect with `Last-Event-ID` to get every change after it."
)


def document_stream(app: FastAPI) -> None:
    """Describe the stream in OpenAPI 3.1 terms (FastAPI writes 3.2's ``itemSchema``,
    which a 3.1 document may not carry)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        path = schema["paths"].get("/v1/contracts/{contract_id}/events", {})
        if (ok := path.get("get", {}).get("responses", {}).get("200")) is not None:
            ok["description"] = "The contract's live updates"
            ok["content"] = {
                "text/event-stream": {
                    "schema": {"type": "string", "description": STREAM_DESCRIPTION}
                }
            }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
