"""RFC 9457 problem+json errors with a stable machine-readable ``code``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cairn_chassis.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error a client can act on: HTTP status, stable code, a sentence to show."""

    def __init__(
        self, status: int, code: str, detail: str, *, title: str | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or code.replace(".", " ").replace("_", " ").capitalize()
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document."""
        doc: dict[str, Any] = {
            "type": f"https://cairn.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    """A JSONResponse carrying ``problem`` as application/problem+json."""
    return JSONResponse(problem.body(instance), status_code=problem.status, media_type=PROBLEM_JSON)


_STATUS_CODES = {
    400: "request.bad",
    401: "auth.unauthenticated",
    403: "auth.forbidden",
    404: "resource.not_found",
    405: "request.method_not_allowed",
    409: "request.conflict",
    415: "request.unsupported_media_type",
    422: "request.invalid",
    428: "request.precondition_required",
}


def install_problem_handlers(app: FastAPI) -> None:
    """Turn every error into problem+json; an unexpected one is logged and becomes a 500."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"])
        detail = f"{where}: {first['msg']}" if where else str(first["msg"])
        return problem_response(
            Problem(422, "request.invalid", detail, title="Invalid request", errors=errors),
            request.url.path,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, f"http.{exc.status_code}")
        return problem_response(Problem(exc.status_code, code, str(exc.detail)), request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("http.unexpected_error", path=request.url.path)
        return problem_response(
            Problem(500, "server.error", "Something went wrong on our side; nothing was changed."),
            request.url.path,
        )
