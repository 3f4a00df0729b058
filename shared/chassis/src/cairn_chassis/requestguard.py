"""Refuse what no route should read: oversized bodies and tokens, and bodies that are not
JSON — before anything is buffered or parsed (issue 16).

A 10 MB body was read, buffered and parsed, an 8 MB token was verified on every request,
and ``text/plain``, forms and multipart got 422 in Pydantic's words while
``application/vnd.api+json`` was accepted. This pure ASGI middleware, the outermost of
every API, answers:

- 431 ``request.header_too_large`` for an ``Authorization`` header over
  ``CAIRN_HTTP_MAX_AUTHORIZATION_BYTES`` (8 KiB);
- 413 ``request.too_large`` for a body over ``CAIRN_HTTP_MAX_BODY_BYTES`` (1 MiB): at once
  when ``Content-Length`` says so, else as soon as the streamed body passes the limit;
- 415 ``request.unsupported_media_type`` for a body (POST, PUT, PATCH) whose media type is
  not ``application/json`` (``charset`` and other parameters aside).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn_chassis.errors import Problem, problem_response

JSON = "application/json"
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class _TooLarge(Exception):
    """The streamed body passed the limit."""


class RequestGuardMiddleware:
    """413 / 431 / 415 problem+json before a request's body is read by anyone."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_authorization_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_authorization = max_authorization_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._refusal(scope)
        if problem is not None:
            await problem_response(problem, scope["path"])(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if started:  # an answer is under way already: nothing better can be sent
                raise
            await problem_response(self._too_large(), scope["path"])(scope, receive, send)

    def _refusal(self, scope: Scope) -> Problem | None:
        headers = Headers(scope=scope)
        authorization = headers.get("authorization", "")
        if len(authorization.encode("latin-1")) > self.max_authorization:
            return Problem(
                431,
                "request.header_too_large",
                f"The Authorization header is over {self.max_authorization} bytes.",
            )
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return self._too_large()
        has_body = (length is not None and length != "0") or "transfer-encoding" in headers
        if scope["method"] in _WITH_BODY and has_body:
            media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
            if media_type != JSON:
                return Problem(
                    415,
                    "request.unsupported_media_type",
                    f"Send the body as {JSON}"
                    + (f", not {media_type}." if media_type else " (Content-Type is missing)."),
                )
        return None

    def _too_large(self) -> Problem:
        return Problem(413, "request.too_large", f"The request body is over {self.max_body} bytes.")
