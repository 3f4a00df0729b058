"""The shared HTTP plumbing: auth, problem+json, Idempotency-Key, health and metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from cairn_chassis.auth import CurrentPrincipal, mint_token
from cairn_chassis.db import Database
from cairn_chassis.errors import Problem
from cairn_chassis.http import create_app
from cairn_chassis.idempotency import IdempotentResponse
from cairn_chassis.settings import ServiceSettings
from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import SQLModel

router = APIRouter(prefix="/v1")
CALLS: list[str] = []


class Item(BaseModel):
    name: str


@router.post("/items", status_code=201)
async def create_item(item: Item, principal: CurrentPrincipal) -> dict[str, str]:
    CALLS.append(item.name)
    return {"name": item.name, "owner": principal.user_id, "n": str(len(CALLS))}


@router.post("/refuse")
async def refuse(principal: CurrentPrincipal) -> None:
    raise Problem(409, "thing.refused", "That is not allowed now.")


@router.post("/crash")
async def crash(principal: CurrentPrincipal) -> None:
    raise RuntimeError("bug")


@pytest.fixture
async def client(settings: ServiceSettings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with db.engine.begin() as conn:
        table = IdempotentResponse.__table__  # type: ignore[attr-defined]
        await conn.run_sync(SQLModel.metadata.drop_all, tables=[table])
        await conn.run_sync(SQLModel.metadata.create_all, tables=[table])
    app = create_app(settings, db, title="t", version="1", description="d", routers=[router])
    CALLS.clear()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def token(settings: ServiceSettings, **over: object) -> str:
    return mint_token(
        settings,
        sub=str(over.get("sub", "u1")),
        role="customer",  # type: ignore[arg-type]
        marketplace="mk",
        email="u1@x.test",
        name="U",
    )


def auth(t: str) -> dict[str, str]:
    return {"authorization": f"Bearer {t}"}


async def test_missing_expired_and_forged_tokens_are_401_problems(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    r = await client.post("/v1/items", json={"name": "a"})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "auth.unauthenticated"

    expired = jwt.encode(
        {"sub": "u1", "role": "customer", "marketplace": "mk", "exp": int(time.time()) - 10},
        settings.jwt_secret or "",
        algorithm="HS256",
    )
    r = await client.post("/v1/items", json={"name": "a"}, headers=auth(expired))
    assert (r.status_code, r.json()["code"]) == (401, "auth.token_expired")

    forged = jwt.encode(
        {"sub": "u1", "role": "customer", "marketplace": "mk", "exp": int(time.time()) + 60},
        "another-secret-another-secret-xx",
        algorithm="HS256",
    )
    r = await client.post("/v1/items", json={"name": "a"}, headers=auth(forged))
    assert (r.status_code, r.json()["code"]) == (401, "auth.invalid_token")

    bad_role = jwt.encode(
        {"sub": "u1", "role": "admin", "marketplace": "mk", "exp": int(time.time()) + 60},
        settings.jwt_secret or "",
        algorithm="HS256",
    )
    r = await client.post("/v1/items", json={"name": "a"}, headers=auth(bad_role))
    assert r.status_code == 401
    assert CALLS == [], "no refused request reached the handler"


async def test_errors_are_problem_json_with_stable_codes(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    t = auth(token(settings))
    r = await client.post("/v1/items", json={"nom": "a"}, headers=t)
    assert r.status_code == 422
    assert r.json()["code"] == "request.invalid"
    assert "name" in r.json()["detail"]
    r = await client.post("/v1/refuse", headers=t)
    assert r.status_code == 409
    assert r.json() | {"instance": None} == {
        "type": "https://cairn.dev/problems/thing.refused",
        "title": "Thing refused",
        "status": 409,
        "code": "thing.refused",
        "detail": "That is not allowed now.",
        "instance": None,
    }
    r = await client.post("/v1/crash", headers=t)
    assert r.status_code == 500
    assert r.json()["code"] == "server.error"
    assert "bug" not in r.text, "internals never leak to clients"


async def test_idempotency_key_replays_the_first_response(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    t = auth(token(settings)) | {"idempotency-key": "k-1"}
    first = await client.post("/v1/items", json={"name": "a"}, headers=t)
    again = await client.post("/v1/items", json={"name": "a"}, headers=t)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert CALLS == ["a"], "the handler ran once"

    different = await client.post("/v1/items", json={"name": "b"}, headers=t)
    assert different.status_code == 422
    assert different.json()["code"] == "idempotency.key_reused"

    other_user = auth(token(settings, sub="u2")) | {"idempotency-key": "k-1"}
    r = await client.post("/v1/items", json={"name": "a"}, headers=other_user)
    assert r.status_code == 201
    assert r.json()["owner"] == "u2", "keys are per caller"
    assert CALLS == ["a", "a"]


async def test_a_failed_request_can_be_retried_with_its_key(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    t = auth(token(settings)) | {"idempotency-key": "k-crash"}
    assert (await client.post("/v1/crash", headers=t)).status_code == 500
    assert (await client.post("/v1/crash", headers=t)).status_code == 500, (
        "a 5xx is not stored: the retry ran again"
    )


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    metrics = await client.get("/metrics")
    assert "cairn_http_requests_total" in metrics.text
