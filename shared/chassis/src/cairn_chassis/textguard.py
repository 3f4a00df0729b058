"""Refuse text PostgreSQL cannot store before it reaches a handler.

PostgreSQL's ``text`` cannot hold the NUL character (U+0000): a job title, a path id or a
query value carrying one made the INSERT or SELECT fail, which surfaced as a 500 (found by
schemathesis). This pure ASGI middleware answers 422 ``request.invalid`` instead — for the
path, the query string and any JSON body — and passes everything else through untouched.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn_chassis.errors import Problem, problem_response

_NUL = Problem(
    422,
    "request.invalid",
    "Text may not contain the NUL character (U+0000).",
    title="Invalid request",
)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class RejectNulMiddleware:
    """422 for a request whose path, query or JSON body holds a NUL character."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(scope["query_string"]):
            await problem_response(_NUL, scope["path"])(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not headers.get(b"content-type", b"").startswith(b"application/json"):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if b"\\u0000" in body:  # JSON can carry NUL only as this escape
            try:
                nul = _has_nul(json.loads(body))
            except ValueError:
                nul = False  # not JSON: the route's own validation answers
            if nul:
                await problem_response(_NUL, scope["path"])(scope, receive, send)
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # e.g. http.disconnect
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
