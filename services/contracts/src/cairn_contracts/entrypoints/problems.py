"""Domain refusals as problem+json: the one table from a refusal's ``code`` to its HTTP
status, and the one exception handler that uses it (the domain carries no status)."""

from __future__ import annotations

from cairn_chassis.errors import Problem, problem_response
from cairn_chassis.logging import get_logger
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cairn_contracts.domain.errors import DomainError

log = get_logger(__name__)

STATUS: dict[str, int] = {
    "auth.wrong_role": 403,
    "marketplace.not_found": 404,
    "job.not_found": 404,
    "contract.not_found": 404,
    "milestone.not_found": 404,
    "dispute.not_found": 404,
    "proposal.duplicate": 409,
    "contract.not_proposal": 409,
    "contract.not_live": 409,
    "contract.closed": 409,
    "contract.money_in_flight": 409,
    "milestone.deleted": 409,
    "milestone.wrong_state": 409,
    "milestone.stale_version": 409,
    "milestone.already_paid": 409,
    "milestone.not_approved": 409,
    "milestone.approved_by_freelancer": 409,
    "milestone.not_submitted": 409,
    "milestone.refund_already_requested": 409,
    "milestone.no_refund_request": 409,
    "milestone.refund_requested": 409,
    "milestone.chargeback_open": 409,
    "setting.freelancer_cannot_create": 409,
    "setting.customer_cannot_create": 409,
    "setting.no_freelancer_approval": 409,
    "dispute.already_resolved": 409,
    "dispute.invalid_split": 422,
}
#: A version mismatch on a request that sent ``If-Match`` is HTTP's 412 Precondition Failed.
PRECONDITION_FAILED = {"milestone.stale_version"}


def status_of(code: str, *, if_match: bool = False) -> int:
    """The HTTP status of a domain refusal."""
    if if_match and code in PRECONDITION_FAILED:
        return 412
    return STATUS.get(code, 409)


def install_domain_errors(app: FastAPI) -> None:
    """Answer every :class:`DomainError` as problem+json with the status of its code."""

    @app.exception_handler(DomainError)
    async def _refused(request: Request, exc: DomainError) -> JSONResponse:
        if exc.code not in STATUS:
            log.warning("http.unmapped_domain_code", code=exc.code)
        status = status_of(exc.code, if_match="if-match" in request.headers)
        return problem_response(Problem(status, exc.code, exc.message), request.url.path)
