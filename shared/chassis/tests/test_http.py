"""The shared HTTP plumbing: auth, problem+json, Idempotency-Key, health and metrics."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from unittest.mock import ANY

import httpx
import jwt
import pytest
from cairn_chassis.auth import CurrentPrincipal, mint_token
from cairn_chassis.db import Database
from cairn_chassis.errors import Problem
from cairn_chassis.http import create_app
from cairn_chassis.idempotency import IdempotentResponse, caller_scope
from cairn_chassis.outbox import utcnow
from cairn_chassis.settings import ServiceSettings
from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlmodel import Field, SQLModel, func, select

router = APIRouter(prefix="/v1")
CALLS: list[str] = []
GATE = asyncio.Event()


class Order(SQLModel, table=True):
    """A command's write in the tests below."""

    __tablename__ = "test_orders"
    id: int | None = Field(default=None, primary_key=True)
    name: str


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


@router.post("/orders", status_code=201)
async def place_order(item: Item, request: Request, principal: CurrentPrincipal) -> dict[str, str]:
    db: Database = request.app.state.db
    async with db.transaction() as session:
        session.add(Order(name=item.name))
    CALLS.append(item.name)
    if item.name == "then-crash":
        raise RuntimeError("the answer could not be built after the write")
    if item.name == "slow":
        await GATE.wait()
    return {"name": item.name}


async def orders(db: Database) -> int:
    async with db.transaction() as session:
        return int((await session.exec(select(func.count()).select_from(Order))).one())


@pytest.fixture
async def client(settings: ServiceSettings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with db.engine.begin() as conn:
        tables = [IdempotentResponse.__table__, Order.__table__]  # type: ignore[attr-defined]
        await conn.run_sync(SQLModel.metadata.drop_all, tables=tables)
        await conn.run_sync(SQLModel.metadata.create_all, tables=tables)
    app = create_app(
        settings.model_copy(update={"http_public_metrics": True}),
        db,
        title="t",
        version="1",
        description="d",
        routers=[router],
        migrations=None,
    )
    CALLS.clear()
    GATE.clear()
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


async def test_a_stored_answer_is_never_replayed_to_an_unverified_token(
    client: httpx.AsyncClient, settings: ServiceSettings, db: Database
) -> None:
    # The answer may hold a secret (a SetupIntent's client secret, say): naming its owner
    # in a forged or expired token together with the key must not fetch it.
    key = {"idempotency-key": "k-secret"}
    first = await client.post("/v1/items", json={"name": "a"}, headers=auth(token(settings)) | key)
    assert first.status_code == 201
    claims = {"sub": "u1", "role": "customer", "marketplace": "mk"}
    forged = jwt.encode(
        claims | {"exp": int(time.time()) + 60}, "not-the-secret-not-the-secret-xx", "HS256"
    )
    expired = jwt.encode(
        claims | {"exp": int(time.time()) - 10}, settings.jwt_secret or "", "HS256"
    )
    for bad, code in [(forged, "auth.invalid_token"), (expired, "auth.token_expired")]:
        r = await client.post("/v1/items", json={"name": "a"}, headers=auth(bad) | key)
        assert (r.status_code, r.json()["code"]) == (401, code)
        assert "idempotent-replayed" not in r.headers
    assert CALLS == ["a"]
    async with db.transaction() as session:
        scopes = set((await session.exec(select(IdempotentResponse.scope))).all())
    assert scopes == {caller_scope("mk", "u1")}, "an unauthenticated request reserves no key"


async def test_header_bytes_that_are_not_utf8_get_the_route_s_answer_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    """Found by schemathesis: ``Authorization: Bearer \\x80`` with an Idempotency-Key made
    the idempotency middleware fail decoding the header — a 500 instead of a 401."""
    headers = {"authorization": b"Bearer \x80", "idempotency-key": b"k-\xe3"}
    r = await client.post("/v1/items", json={"name": "a"}, headers=headers)
    assert (r.status_code, r.json()["code"]) == (401, "auth.invalid_token")
    assert CALLS == []


async def test_text_with_a_nul_character_is_a_clear_422_not_a_database_error(
    client: httpx.AsyncClient, settings: ServiceSettings, db: Database
) -> None:
    # PostgreSQL text cannot hold U+0000: the write below failed as a 500 (schemathesis
    # found it on POST /v1/jobs). Body, path and query are all checked.
    headers = auth(token(settings))
    r = await client.post("/v1/orders", json={"name": "bad\u0000name"}, headers=headers)
    assert (r.status_code, r.json()["code"]) == (422, "request.invalid")
    assert "NUL" in r.json()["detail"]
    assert await orders(db) == 0
    assert CALLS == []
    for url in ("/v1/items%00", "/v1/items?x=%00"):
        r = await client.post(url, json={"name": "a"}, headers=headers)
        assert (r.status_code, r.json()["code"]) == (422, "request.invalid"), url
    # An escaped backslash followed by "u0000" is ordinary text.
    r = await client.post("/v1/orders", json={"name": "C:\\u0000"}, headers=headers)
    assert r.status_code == 201
    assert await orders(db) == 1


async def test_a_failed_request_can_be_retried_with_its_key(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    t = auth(token(settings)) | {"idempotency-key": "k-crash"}
    assert (await client.post("/v1/crash", headers=t)).status_code == 500
    assert (await client.post("/v1/crash", headers=t)).status_code == 500, (
        "a 5xx is not stored: the retry ran again"
    )


async def test_a_keyed_command_and_its_stored_answer_commit_together(
    client: httpx.AsyncClient, settings: ServiceSettings, db: Database
) -> None:
    t = auth(token(settings)) | {"idempotency-key": "k-atomic"}
    assert (
        await client.post("/v1/orders", json={"name": "then-crash"}, headers=t)
    ).status_code == 500
    assert await orders(db) == 0, "the write of a request that failed is undone with it"
    r = await client.post("/v1/orders", json={"name": "ok"}, headers=auth(token(settings)))
    assert r.status_code == 201
    assert await orders(db) == 1

    t = auth(token(settings)) | {"idempotency-key": "k-once"}
    first = await client.post("/v1/orders", json={"name": "a"}, headers=t)
    again = await client.post("/v1/orders", json={"name": "a"}, headers=t)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert await orders(db) == 2, "the retry replayed the answer; the order was placed once"


async def test_a_retry_while_the_first_runs_is_told_to_wait_and_then_replays(
    client: httpx.AsyncClient, settings: ServiceSettings, db: Database
) -> None:
    t = auth(token(settings)) | {"idempotency-key": "k-slow"}
    first = asyncio.create_task(client.post("/v1/orders", json={"name": "slow"}, headers=t))
    while CALLS != ["slow"]:
        await asyncio.sleep(0.01)
    busy = await client.post("/v1/orders", json={"name": "slow"}, headers=t)
    assert busy.status_code == 409
    assert busy.json()["code"] == "idempotency.in_progress"
    GATE.set()
    assert (await first).status_code == 201
    replay = await client.post("/v1/orders", json={"name": "slow"}, headers=t)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert await orders(db) == 1


async def test_a_key_whose_first_request_died_unanswered_runs_at_once(
    client: httpx.AsyncClient, settings: ServiceSettings, db: Database
) -> None:
    # What a killed API leaves: the key reserved, no answer, no lock (its transaction,
    # and with it the command's writes, died with the process).
    body = b'{"name": "again"}'
    t = auth(token(settings)) | {"idempotency-key": "k-dead", "content-type": "application/json"}
    async with db.transaction() as session:
        session.add(
            IdempotentResponse(
                scope=caller_scope("mk", "u1"),
                key="k-dead",
                request_hash=_digest("/v1/orders", body),
                created_at=utcnow(),
            )
        )
    r = await client.post("/v1/orders", content=body, headers=t)
    assert r.status_code == 201, "no waiting for an expiry: the unanswered key is taken over"
    assert await orders(db) == 1


def _digest(path: str, body: bytes) -> str:
    return hashlib.sha256(path.encode() + b"\0" + body).hexdigest()


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok"}
    metrics = await client.get("/metrics")
    assert "cairn_http_requests_total" in metrics.text


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("bad\u0000name", False),
        ("bell\u0007", False),
        ("next\u0085line", True),
        ("evil\u202etxt.exe", True),
        ("isolate\u2066x\u2069", False),
    ],
    ids=["nul", "c0", "c1-raw", "bidi-override-raw", "bidi-isolate-escaped"],
)
async def test_control_characters_in_a_body_are_refused_with_the_field_named(
    client: httpx.AsyncClient, settings: ServiceSettings, db: Database, text: str, raw: bool
) -> None:
    """Issue 16: C0, C1 and bidi controls are refused, and the refusal carries the
    ``errors`` list every ``request.invalid`` promises (docs/errors.md)."""
    body = json.dumps({"name": text}, ensure_ascii=not raw).encode()
    headers = auth(token(settings)) | {"content-type": "application/json"}
    r = await client.post("/v1/orders", content=body, headers=headers)
    assert (r.status_code, r.json()["code"]) == (422, "request.invalid"), r.text
    assert r.json()["errors"] == [
        {"loc": ["body", "name"], "msg": ANY, "type": "string_control_character"}
    ]
    assert await orders(db) == 0


async def test_tabs_and_line_breaks_in_multi_line_text_are_accepted(
    client: httpx.AsyncClient, settings: ServiceSettings, db: Database
) -> None:
    r = await client.post(
        "/v1/orders", json={"name": "line one\r\n\tline two"}, headers=auth(token(settings))
    )
    assert r.status_code == 201
    assert await orders(db) == 1


async def test_a_bidi_control_in_the_query_is_refused_with_its_name(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    r = await client.post(
        "/v1/items?filter=%E2%80%AEx", json={"name": "a"}, headers=auth(token(settings))
    )
    assert (r.status_code, r.json()["errors"][0]["loc"]) == (422, ["query", "filter"])


async def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(
    client: httpx.AsyncClient, settings: ServiceSettings, db: Database
) -> None:
    """Issue 16: a 10 MB body was read, buffered and parsed."""
    headers = auth(token(settings)) | {"content-type": "application/json"}
    big = json.dumps({"name": "x" * (settings.http_max_body_bytes + 1)}).encode()
    r = await client.post("/v1/orders", content=big, headers=headers)
    assert (r.status_code, r.json()["code"]) == (413, "request.too_large")

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        yield b'{"name": "'
        for _ in range(settings.http_max_body_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = await client.post("/v1/orders", content=streamed(), headers=headers)
    assert (r.status_code, r.json()["code"]) == (413, "request.too_large")
    assert await orders(db) == 0
    assert CALLS == []


async def test_an_authorization_header_over_the_limit_is_refused_with_431(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    """Issue 16: an 8 MB token was accepted (and verified) on every request."""
    huge = {"authorization": "Bearer " + "a" * settings.http_max_authorization_bytes}
    for method, url in (("GET", "/healthz"), ("POST", "/v1/items")):
        r = await client.request(method, url, headers=huge, json={"name": "a"})
        assert (r.status_code, r.json()["code"]) == (431, "request.header_too_large"), url


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/vnd.api+json",
        None,
    ],
)
async def test_a_body_that_is_not_json_is_refused_with_415(
    client: httpx.AsyncClient, settings: ServiceSettings, content_type: str | None
) -> None:
    """Issue 16: these got 422 in Pydantic's words, and vnd.api+json was accepted."""
    headers = auth(token(settings)) | ({"content-type": content_type} if content_type else {})
    r = await client.post("/v1/items", content=b'{"name": "a"}', headers=headers)
    assert (r.status_code, r.json()["code"]) == (415, "request.unsupported_media_type")
    assert CALLS == []


async def test_json_with_a_charset_and_a_post_without_a_body_are_accepted(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    headers = auth(token(settings)) | {"content-type": "Application/JSON; charset=utf-8"}
    r = await client.post("/v1/items", content=b'{"name": "a"}', headers=headers)
    assert r.status_code == 201
    r = await client.post("/v1/refuse", headers=auth(token(settings)))
    assert r.json()["code"] == "thing.refused", "a command without a body needs no type"


async def test_keys_of_two_tenants_never_meet_whatever_their_ids_hold(
    client: httpx.AsyncClient, settings: ServiceSettings
) -> None:
    """Issue 16: the scope was f"{marketplace}:{sub}", so marketplace "a:b" with subject "c"
    was served the stored answer of marketplace "a" with subject "b:c"."""

    def caller(marketplace: str, sub: str) -> dict[str, str]:
        t = mint_token(settings, sub=sub, role="customer", marketplace=marketplace)
        return auth(t) | {"idempotency-key": "k-tenant"}

    first = await client.post("/v1/items", json={"name": "a"}, headers=caller("a", "b:c"))
    other = await client.post("/v1/items", json={"name": "a"}, headers=caller("a:b", "c"))
    assert (first.status_code, other.status_code) == (201, 201)
    assert "idempotent-replayed" not in other.headers
    assert other.json()["owner"] == "c", "the second tenant got its own answer"
    assert CALLS == ["a", "a"]
