"""The HTTP app every service starts from: problem+json errors, auth, health, metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from aiokafka import AIOKafkaClient
from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from cairn_chassis import worker_http
from cairn_chassis.auth import TokenVerifier
from cairn_chassis.db import Database
from cairn_chassis.errors import install_problem_handlers
from cairn_chassis.idempotency import IdempotencyMiddleware
from cairn_chassis.kafka_security import client_kwargs
from cairn_chassis.openapi import document_api
from cairn_chassis.protection import RateLimitMiddleware, SecurityHeadersMiddleware
from cairn_chassis.requestguard import RequestGuardMiddleware
from cairn_chassis.settings import ServiceSettings
from cairn_chassis.textguard import RejectControlCharactersMiddleware

#: A list endpoint's ``offset``, bounded: PostgreSQL refuses an OFFSET beyond a bigint,
#: which would otherwise surface as a 500 (found by schemathesis).
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]

HTTP_REQUESTS = Counter("cairn_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_SECONDS = Histogram("cairn_http_request_seconds", "HTTP request latency", ["method", "route"])

ReadinessCheck = Callable[[], Awaitable[None]]


class BrokerProbe:
    """Answers whether the Kafka cluster is reachable (cached for a few seconds)."""

    def __init__(self, settings: ServiceSettings, *, ttl_s: float = 5.0) -> None:
        self._bootstrap = settings.kafka_bootstrap_servers
        self._client_kwargs = client_kwargs(settings)
        self._ttl_s = ttl_s
        self._ok_until = 0.0

    async def __call__(self) -> None:
        if time.monotonic() < self._ok_until:
            return
        client = AIOKafkaClient(
            bootstrap_servers=self._bootstrap, request_timeout_ms=3000, **self._client_kwargs
        )
        try:
            await asyncio.wait_for(client.bootstrap(), timeout=5)
        finally:
            await client.close()
        self._ok_until = time.monotonic() + self._ttl_s


def create_app(
    settings: ServiceSettings,
    db: Database,
    *,
    title: str,
    version: str,
    description: str,
    routers: Sequence[APIRouter],
    readiness: Sequence[tuple[str, ReadinessCheck]] = (),
) -> FastAPI:
    """A FastAPI app with the shared plumbing; ``routers`` carry the service's /v1 API."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stopping = asyncio.Event()
        internal: asyncio.Task[None] | None = None
        if not settings.http_public_metrics and settings.worker_port:
            # Metrics off the public port: on the internal one, as the workers serve them.
            internal = asyncio.create_task(
                worker_http.serve(
                    settings.api_host,
                    settings.worker_port,
                    stopping,
                    alive=lambda: True,
                    checks=[("database", db.ping)],
                )
            )
        yield
        stopping.set()
        if internal is not None:
            await internal
        await db.dispose()

    docs = settings.http_public_docs
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.token_verifier = TokenVerifier(settings)
    install_problem_handlers(app)
    app.add_middleware(IdempotencyMiddleware, db=db, verifier=app.state.token_verifier)
    app.add_middleware(RejectControlCharactersMiddleware)
    app.add_middleware(
        RateLimitMiddleware,
        per_ip=settings.rate_limit_per_ip,
        per_user=settings.rate_limit_per_user,
        verifier=app.state.token_verifier,
    )
    # Added last, so they run first: nothing is buffered or parsed before the guard has
    # looked, and every answer (a refusal too) carries the security and CORS headers.
    app.add_middleware(
        RequestGuardMiddleware,
        max_body_bytes=settings.http_max_body_bytes,
        max_authorization_bytes=settings.http_max_authorization_bytes,
    )
    if settings.cors_allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["authorization", "content-type", "idempotency-key", "if-match"],
            expose_headers=["etag", "location", "idempotent-replayed", "retry-after"],
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)

    @app.middleware("http")
    async def _metrics(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        HTTP_SECONDS.labels(request.method, path).observe(time.perf_counter() - start)
        return response

    for router in routers:
        app.include_router(router)

    checks: list[tuple[str, ReadinessCheck]] = [
        ("database", db.ping),
        ("broker", BrokerProbe(settings)),
        *readiness,
    ]

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: database and broker answer")
    async def readyz() -> JSONResponse:
        results: dict[str, Any] = {}
        ok = True
        for name, check in checks:
            try:
                await asyncio.wait_for(check(), timeout=6)
                results[name] = "ok"
            except Exception as exc:
                ok = False
                results[name] = f"failed: {exc!r}"
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": results},
            status_code=200 if ok else 503,
        )

    if settings.http_public_metrics:

        @app.get(
            "/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response
        )
        async def metrics() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    document_api(app)
    return app
