"""The usual protections of a public API (issue 16): CORS, security headers, rate limits.

- **CORS** is off unless ``CAIRN_CORS_ALLOWED_ORIGINS`` names the front ends' origins
  (per deployment; a browser on any other origin gets no CORS headers).
- **Security headers** on every answer: no sniffing, no framing, no referrer, no caching
  of API answers; a Content-Security-Policy that allows nothing (the API serves JSON;
  the interactive docs, when served, need their scripts and get none).
- **Rate limits** per client IP and per signed-in user (``CAIRN_RATE_LIMIT_PER_IP``,
  ``CAIRN_RATE_LIMIT_PER_USER``, e.g. ``600/minute``; empty = off), counted in-process with
  the ``limits`` library's moving window: each API replica counts on its own, so the
  effective limit is the replicas times the setting. A gateway in front (ingress, API
  gateway) limits better — across replicas, before the pod — and is where production
  limits belong; these are the floor when there is none. 429 ``request.rate_limited``
  with ``Retry-After``.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn_chassis.auth import TokenVerifier
from cairn_chassis.errors import Problem, problem_response

_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
}
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
_DOCS = ("/docs", "/redoc", "/openapi.json")


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(_DOCS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers.setdefault(name, value)
                if not docs:
                    headers.setdefault("content-security-policy", _API_CSP)
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)


class RateLimitMiddleware:
    """429 once a client IP or a signed-in user is over its limit (moving window)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_ip: str,
        per_user: str,
        verifier: TokenVerifier,
    ) -> None:
        self.app = app
        self.per_ip: RateLimitItem | None = parse(per_ip) if per_ip else None
        self.per_user: RateLimitItem | None = parse(per_user) if per_user else None
        self.verifier = verifier
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in ("/healthz", "/readyz"):
            await self.app(scope, receive, send)
            return
        for item, key in await self._keys(scope):
            if not self.limiter.hit(item, *key):
                reset, _ = self.limiter.get_window_stats(item, *key)
                retry = max(1, math.ceil(reset - time.time()))
                problem = Problem(
                    429,
                    "request.rate_limited",
                    f"Too many requests; retry in {retry} s.",
                )
                response = problem_response(problem, scope["path"])
                response.headers["retry-after"] = str(retry)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _keys(self, scope: Scope) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
        keys: list[tuple[RateLimitItem, tuple[str, ...]]] = []
        if self.per_ip is not None:
            client = scope.get("client") or ("unknown", 0)
            keys.append((self.per_ip, ("ip", str(client[0]))))
        if self.per_user is not None:
            scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                try:
                    principal = await self.verifier.averify(token.strip())
                except Problem:
                    principal = None  # refused by the route; the IP limit still counts
                if principal is not None:
                    keys.append(
                        (self.per_user, ("user", principal.marketplace_id, principal.user_id))
                    )
        return keys
