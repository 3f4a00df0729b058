"""Contracts: the lists, one contract, its history, and the contract's rows (accept,
decline, withdraw, end)."""

from __future__ import annotations

from typing import Literal

from cairn_chassis.http import Offset
from fastapi import APIRouter

from cairn_contracts.adapters import views
from cairn_contracts.entrypoints.bodies import ReasonIn
from cairn_contracts.entrypoints.deps import CallerDep, DatabaseDep, Limit, UnitOfWorkDep
from cairn_contracts.entrypoints.schemas import (
    ContractHistoryPublic,
    ContractPublic,
    Page,
)
from cairn_contracts.service import contracts

router = APIRouter(prefix="/v1/contracts", tags=["contracts"])


@router.get("", summary="The caller's contracts: proposal = 'Proposals', live = 'Current Jobs'")
async def list_contracts(
    db: DatabaseDep,
    caller: CallerDep,
    status: Literal["proposal", "live", "ended", "declined", "withdrawn"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ContractPublic]:
    rows = await views.list_contracts(db, caller, status, limit=limit, offset=offset)
    return Page.of(
        [ContractPublic.of(contract, viewer_role=caller.role) for contract in rows], limit, offset
    )


@router.get("/{contract_id}", summary="One contract with its milestones")
async def get_contract(contract_id: str, uow: UnitOfWorkDep, caller: CallerDep) -> ContractPublic:
    contract = await contracts.get(uow, caller, contract_id)
    return ContractPublic.of(contract, viewer_role=caller.role, with_milestones=True)


@router.get(
    "/{contract_id}/history",
    summary="Every transition of the contract (proposal, live, ended…) with actor and time",
)
async def get_contract_history(
    contract_id: str, db: DatabaseDep, caller: CallerDep
) -> list[ContractHistoryPublic]:
    rows = await views.contract_history(db, caller, contract_id)
    return [ContractHistoryPublic.of(row) for row in rows]


@router.post("/{contract_id}/accept", summary="Accept a proposal: the contract goes live")
async def accept(contract_id: str, uow: UnitOfWorkDep, caller: CallerDep) -> ContractPublic:
    contract = await contracts.accept(uow, caller, contract_id)
    return ContractPublic.of(contract, viewer_role=caller.role)


@router.post("/{contract_id}/decline", summary="Decline a proposal (customer)")
async def decline(
    contract_id: str, uow: UnitOfWorkDep, caller: CallerDep, body: ReasonIn | None = None
) -> ContractPublic:
    reason = body.reason if body else None
    contract = await contracts.decline(uow, caller, contract_id, reason)
    return ContractPublic.of(contract, viewer_role=caller.role)


@router.post("/{contract_id}/withdraw", summary="Withdraw a proposal (freelancer)")
async def withdraw(
    contract_id: str, uow: UnitOfWorkDep, caller: CallerDep, body: ReasonIn | None = None
) -> ContractPublic:
    reason = body.reason if body else None
    contract = await contracts.withdraw(uow, caller, contract_id, reason)
    return ContractPublic.of(contract, viewer_role=caller.role)


@router.post("/{contract_id}/end", summary="End a live contract (either party; no money in flight)")
async def end(contract_id: str, uow: UnitOfWorkDep, caller: CallerDep) -> ContractPublic:
    contract = await contracts.end(uow, caller, contract_id)
    return ContractPublic.of(contract, viewer_role=caller.role)
