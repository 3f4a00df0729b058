"""FastAPI dependencies of the contracts API (the template's ``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

from cairn_chassis.auth import CurrentPrincipal
from cairn_chassis.db import Database
from fastapi import Depends, Query, Request

from cairn_contracts.adapters.unit_of_work import SqlUnitOfWork
from cairn_contracts.domain.model import Caller
from cairn_contracts.service.unit_of_work import UnitOfWork


def get_db(request: Request) -> Database:
    """The process's database (set up by ``create_app``)."""
    db: Database = request.app.state.db
    return db


DatabaseDep = Annotated[Database, Depends(get_db)]


def get_uow(db: DatabaseDep) -> UnitOfWork:
    """A unit of work for one use case."""
    return SqlUnitOfWork(db)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_uow)]


def get_caller(principal: CurrentPrincipal) -> Caller:
    """The signed-in user, as the domain names who acts."""
    return Caller(
        user_id=principal.user_id, marketplace_id=principal.marketplace_id, role=principal.role
    )


CallerDep = Annotated[Caller, Depends(get_caller)]
Limit = Annotated[int, Query(ge=1, le=100)]
