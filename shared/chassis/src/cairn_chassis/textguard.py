"""Refuse text with control characters before it reaches a handler.

PostgreSQL's ``text`` cannot hold the NUL character (U+0000): a job title, a path id or a
query value carrying one made the INSERT or SELECT fail, which surfaced as a 500 (found by
schemathesis). Other control characters are stored, and break later: a CR/LF in a name
made its email impossible to build, and the bidi controls let a name or a subject display
as something it is not. This pure ASGI middleware answers 422 ``request.invalid`` — with
the ``errors`` list every ``request.invalid`` carries — for a path, a query string or any
string of a JSON body holding a character :data:`cairn_schemas.text.FORBIDDEN_IN_TEXT`
names (C0 but tab, LF and CR; DEL; C1; the bidi controls), and passes everything else
through untouched. (Tab, LF and CR in a single-line field are made spaces by the event
contract's ``Line`` type.)
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from cairn_schemas.text import has_forbidden
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn_chassis.errors import Problem, problem_response

_MESSAGE = (
    "Text may not contain control characters (such as NUL, U+0000) or bidirectional "
    "controls (U+202A to U+202E, U+2066 to U+2069)."
)
#: Only JSON text that holds an escape or a raw C1 / bidi character needs parsing here:
#: a raw C0 character is not valid JSON at all (the route's own validation refuses it).
_SUSPECT = re.compile(rb"\\u|\\b|\\f|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


def forbidden_at(value: Any, loc: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where in a JSON value (keys included) the first forbidden character is, or None."""
    if isinstance(value, str):
        return loc if has_forbidden(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if has_forbidden(key):
                return (*loc, key)
            found = forbidden_at(item, (*loc, key))
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = forbidden_at(item, (*loc, str(index)))
            if found is not None:
                return found
    return None


def refusal(loc: tuple[str, ...]) -> Problem:
    """The 422 for a forbidden character at ``loc`` (``("body", "title")``, ...)."""
    where = ".".join(loc[1:]) or loc[0]
    return Problem(
        422,
        "request.invalid",
        f"{where}: {_MESSAGE}",
        title="Invalid request",
        errors=[{"loc": list(loc), "msg": _MESSAGE, "type": "string_control_character"}],
    )


def _in_url(scope: Scope) -> tuple[str, ...] | None:
    if has_forbidden(scope["path"]):
        return ("path",)
    query = scope["query_string"].decode("latin-1")
    if has_forbidden(unquote(query, errors="replace")):
        for name, value in parse_qsl(query, keep_blank_values=True):
            if has_forbidden(name) or has_forbidden(value):
                return ("query", name)
        return ("query",)
    return None


class RejectControlCharactersMiddleware:
    """422 for a request whose path, query or JSON body holds a forbidden character."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loc = _in_url(scope)
        if loc is not None:
            await problem_response(refusal(loc), scope["path"])(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not headers.get(b"content-type", b"").lower().startswith(b"application/json"):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if _SUSPECT.search(body):
            try:
                found = forbidden_at(json.loads(body), ("body",))
            except ValueError:
                found = None  # not JSON: the route's own validation answers
            if found is not None:
                await problem_response(refusal(found), scope["path"])(scope, receive, send)
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # e.g. http.disconnect
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
