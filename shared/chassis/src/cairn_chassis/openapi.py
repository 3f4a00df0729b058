"""What FastAPI's generated OpenAPI leaves out, added for the clients generated from it.

- Errors: every ``/v1`` operation documents its error answers as
  ``application/problem+json`` with the :data:`PROBLEM_SCHEMA` (the real body, with its
  stable ``code``) instead of FastAPI's ``HTTPValidationError``.
- Auth: operations that need a bearer token (FastAPI marks them with the ``bearerAuth``
  scheme of :func:`cairn_chassis.auth.current_principal`) document their 401/403.
- Idempotency: authenticated POSTs document the optional ``Idempotency-Key`` header and
  the answers it can give (409 ``idempotency.in_progress``, 422 ``idempotency.key_reused``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cairn_chassis.errors import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details. Switch on `code`: it is stable across "
    "releases; `detail` is a sentence for people and may change.",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "examples": ["milestone.wrong_state"]},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "For `request.invalid`: every field that was refused.",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}

_ERRORS = {
    "404": "Not found — or not visible to the caller (`*.not_found`).",
    "409": "Refused by a rule in the current state (e.g. `milestone.wrong_state`), or "
    "`idempotency.in_progress`: a request with this Idempotency-Key is still running.",
    "422": "The request is invalid (`request.invalid`, with `errors`), or its "
    "Idempotency-Key was used with another body (`idempotency.key_reused`).",
}
_AUTH_ERRORS = {
    "401": "No valid bearer token (`auth.unauthenticated`, `auth.invalid_token`, "
    "`auth.token_expired`).",
    "403": "The caller's role may not do this (`*.wrong_role`).",
}
_PRECONDITION_ERRORS = {
    "412": "The If-Match version is not the current one (`*.stale_version`): read it again.",
    "428": "If-Match is required (`request.precondition_required`).",
}
IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any unique string (≤ 200 characters) per intended command. A retry with "
    "the same key and body gets the first answer again (`Idempotent-Replayed: true`) "
    "without running the command twice.",
    "schema": {"type": "string", "maxLength": 200},
}


def document_api(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe errors, bearer auth and Idempotency-Key."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue
            for method, operation in operations.items():
                errors = dict(_ERRORS)
                if operation.get("security"):
                    errors |= _AUTH_ERRORS
                    if method == "post":
                        operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
                headers = {
                    p.get("name", "").lower()
                    for p in operation.get("parameters", [])
                    if p.get("in") == "header"
                }
                if "if-match" in headers:
                    errors |= _PRECONDITION_ERRORS
                responses = operation.setdefault("responses", {})
                for status, description in errors.items():
                    responses[status] = {"description": description, "content": problem}
        schema["components"]["schemas"].pop("HTTPValidationError", None)
        schema["components"]["schemas"].pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
