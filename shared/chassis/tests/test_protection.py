"""The usual protections (issue 16, item 11): CORS per deployment (off by default),
security headers, per-IP and per-user rate limits, /docs and /metrics switchable off."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cairn_chassis.auth import CurrentPrincipal, mint_token
from cairn_chassis.db import Database
from cairn_chassis.http import create_app
from cairn_chassis.settings import ServiceSettings
from fastapi import APIRouter

router = APIRouter(prefix="/v1")


@router.get("/whoami")
async def whoami(principal: CurrentPrincipal) -> dict[str, str]:
    return {"sub": principal.user_id}


async def _client(settings: ServiceSettings, db: Database, **over: object) -> httpx.AsyncClient:
    app = create_app(
        settings.model_copy(update=over),
        db,
        title="t",
        version="1",
        description="d",
        routers=[router],
        migrations=None,
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def _bearer(settings: ServiceSettings, sub: str) -> dict[str, str]:
    token = mint_token(settings, sub=sub, role="customer", marketplace="mk")
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
async def plain(settings: ServiceSettings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(settings, db) as client:
        yield client


async def test_every_answer_carries_the_security_headers(plain: httpx.AsyncClient) -> None:
    for url in ("/healthz", "/v1/whoami", "/nowhere"):
        r = await plain.get(url)
        assert r.headers["x-content-type-options"] == "nosniff", url
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert r.headers["cache-control"] == "no-store"


async def test_cors_is_off_by_default_and_allows_only_the_configured_origins(
    plain: httpx.AsyncClient, settings: ServiceSettings, db: Database
) -> None:
    preflight = {
        "origin": "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }
    r = await plain.options("/v1/whoami", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    async with await _client(settings, db, cors_allowed_origins=["https://app.example"]) as c:
        r = await c.options("/v1/whoami", headers=preflight)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        evil = await c.options("/v1/whoami", headers=preflight | {"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in evil.headers


async def test_per_user_and_per_ip_limits_answer_429_with_retry_after(
    settings: ServiceSettings, db: Database
) -> None:
    async with await _client(settings, db, rate_limit_per_user="3/minute") as c:
        ada, bob = _bearer(settings, "ada"), _bearer(settings, "bob")
        assert [(await c.get("/v1/whoami", headers=ada)).status_code for _ in range(3)] == [200] * 3
        r = await c.get("/v1/whoami", headers=ada)
        assert (r.status_code, r.json()["code"]) == (429, "request.rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert (await c.get("/v1/whoami", headers=bob)).status_code == 200, "per user"
        assert (await c.get("/healthz")).status_code == 200, "probes are never limited"
    async with await _client(settings, db, rate_limit_per_ip="2/minute") as c:
        codes = [
            (await c.get("/v1/whoami", headers=_bearer(settings, f"u{n}"))).status_code
            for n in range(3)
        ]
        assert codes == [200, 200, 429], "one IP, whoever signs in"


async def test_docs_and_metrics_can_be_taken_off_the_public_port(
    plain: httpx.AsyncClient, settings: ServiceSettings, db: Database
) -> None:
    assert (await plain.get("/docs")).status_code == 200
    assert (await plain.get("/metrics")).status_code == 404, "metrics: the internal port"
    async with await _client(settings, db, http_public_metrics=True) as c:
        assert (await c.get("/metrics")).status_code == 200
    async with await _client(settings, db, http_public_docs=False) as c:
        for url in ("/docs", "/redoc", "/openapi.json", "/metrics"):
            assert (await c.get(url)).status_code == 404, url
