"""Every request's id and one access-log line (issue 19, item 4).

``X-Request-ID`` is accepted when well formed (a gateway's or a front end's, so one id
follows a request through their logs and Cairn's), else replaced by a new one; it is
echoed on the answer and bound to every log line written while the request runs. When
the request ends, one structured ``http.request`` line says what happened: method, route
template and path, status, duration, client and the request id (and the trace id when
tracing is on). The probes and the metrics are not logged: they would drown the rest.
"""

from __future__ import annotations

import time

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn_chassis.correlation import REQUEST_ID_HEADER, request_id
from cairn_chassis.logging import get_logger

log = get_logger("cairn.http")
_QUIET = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestContextMiddleware:
    """Request id in, out and in the logs; the access-log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        status = 500  # an exception that escapes every handler ends as a 500
        start = time.perf_counter()

        async def with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                await self.app(scope, receive, with_id)
            finally:
                path = scope["path"]
                if path not in _QUIET:
                    route = getattr(scope.get("route"), "path", None)
                    client = scope.get("client")
                    log.info(
                        "http.request",
                        method=scope["method"],
                        route=route or "unmatched",
                        path=path,
                        status=status,
                        duration_ms=round((time.perf_counter() - start) * 1000, 1),
                        client=client[0] if client else None,
                    )
