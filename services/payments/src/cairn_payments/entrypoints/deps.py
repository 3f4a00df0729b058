"""FastAPI dependencies of the payments API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cairn_payments.service.context import PaymentsContext


def get_context(request: Request) -> PaymentsContext:
    """The process's :class:`PaymentsContext` (set up by :func:`create_app`)."""
    ctx: PaymentsContext = request.app.state.payments
    return ctx


ContextDep = Annotated[PaymentsContext, Depends(get_context)]
