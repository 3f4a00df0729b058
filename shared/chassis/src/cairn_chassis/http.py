"""The HTTP app every service starts from: problem+json errors, auth, health, metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram

from cairn_chassis import worker_http
from cairn_chassis.auth import TokenVerifier
from cairn_chassis.db import Database
from cairn_chassis.errors import install_problem_handlers
from cairn_chassis.health import Check, SchemaAtHead, run_checks
from cairn_chassis.idempotency import IdempotencyMiddleware
from cairn_chassis.metrics import api_metrics
from cairn_chassis.openapi import document_api
from cairn_chassis.protection import RateLimitMiddleware, SecurityHeadersMiddleware
from cairn_chassis.requestguard import RequestGuardMiddleware
from cairn_chassis.requestlog import RequestContextMiddleware
from cairn_chassis.settings import ServiceSettings
from cairn_chassis.textguard import RejectControlCharactersMiddleware
from cairn_chassis.tracing import instrument_app

#: A list endpoint's ``offset``, bounded: PostgreSQL refuses an OFFSET beyond a bigint,
#: which would otherwise surface as a 500 (found by schemathesis).
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]

HTTP_REQUESTS = Counter("cairn_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_SECONDS = Histogram("cairn_http_request_seconds", "HTTP request latency", ["method", "route"])


def create_app(
    settings: ServiceSettings,
    db: Database,
    *,
    title: str,
    version: str,
    description: str,
    routers: Sequence[APIRouter],
    migrations: Path | None,
    readiness: Sequence[Check] = (),
) -> FastAPI:
    """A FastAPI app with the shared plumbing; ``routers`` carry the service's /v1 API.

    ``migrations`` is the service's Alembic folder: ``/readyz`` fails until the database
    is at its head (None only for apps without migrations, e.g. the chassis' tests). The
    brokers are not checked: an API's writes go to the outbox, whatever Kafka does.
    """
    checks: list[Check] = [("database", db.ping)]
    if migrations is not None:
        checks.append(("schema", SchemaAtHead(db, migrations)))
    checks.extend(readiness)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stopping = asyncio.Event()
        internal: asyncio.Task[None] | None = None
        if settings.internal_port:
            # Metrics (and the probes, as a worker serves them) on the internal port.
            internal = asyncio.create_task(
                worker_http.serve(
                    settings.api_host,
                    settings.internal_port,
                    stopping,
                    alive=lambda: True,
                    checks=checks,
                    registry=api_metrics(),
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
            allow_headers=[
                "authorization",
                "content-type",
                "idempotency-key",
                "if-match",
                "x-request-id",
            ],
            expose_headers=[
                "etag",
                "location",
                "idempotent-replayed",
                "retry-after",
                "x-request-id",
            ],
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

    # Outermost of all (added last): every log line of the request, a refusal's too,
    # carries its id, and every answer echoes it.
    app.add_middleware(RequestContextMiddleware)

    for router in routers:
        app.include_router(router)

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: the database answers and its schema is at this release's head",
    )
    async def readyz() -> JSONResponse:
        ok, results = await run_checks(checks)
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": results},
            status_code=200 if ok else 503,
        )

    if settings.http_public_metrics:

        @app.get(
            "/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response
        )
        async def metrics() -> Response:
            return Response(api_metrics().expose(), media_type=CONTENT_TYPE_LATEST)

    document_api(app)
    instrument_app(app)
    return app
