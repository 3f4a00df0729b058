"""``Idempotency-Key`` on POST (DESIGN §7): a repeated key returns the first response.

The key is scoped to the caller (token subject and marketplace). A repeat with a different
body is refused with 422 ``idempotency.key_reused``; a repeat while the first request is
still running gets 409 ``idempotency.in_progress``. Only responses below 500 are kept, so
a request that failed on our side can be retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt
from sqlalchemy import Column, LargeBinary, Text
from sqlmodel import Field, SQLModel, col, delete, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn_chassis.db import Database
from cairn_chassis.errors import PROBLEM_JSON, Problem
from cairn_chassis.outbox import utcnow

PENDING_EXPIRES_AFTER = timedelta(minutes=2)


class IdempotentResponse(SQLModel, table=True):
    """The first response given for one caller's Idempotency-Key."""

    __tablename__ = "idempotency_keys"

    scope: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    status: int | None = Field(default=None, nullable=True)
    content_type: str | None = Field(default=None, nullable=True)
    body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    headers: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


def _caller_scope(authorization: str) -> str:
    # The route verifies the token; here we only need a stable per-caller namespace.
    _, _, token = authorization.partition(" ")
    try:
        claims = jwt.decode(token.strip(), options={"verify_signature": False})
        return f"{claims.get('marketplace', '')}:{claims.get('sub', '')}"
    except jwt.InvalidTokenError:
        return "anonymous:" + hashlib.sha256(authorization.encode()).hexdigest()[:16]


async def _send_problem(send: Send, problem: Problem) -> None:
    body = json.dumps(problem.body()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class _Captured:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class IdempotencyMiddleware:
    """Pure ASGI middleware storing the first response for each (caller, key)."""

    def __init__(self, app: ASGIApp, db: Database) -> None:
        self.app = app
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        if not key:
            await self.app(scope, receive, send)
            return
        if len(key) > 200:
            await _send_problem(
                send,
                Problem(
                    400, "idempotency.key_too_long", "Idempotency-Key is at most 200 characters."
                ),
            )
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        caller = _caller_scope(headers.get("authorization", ""))
        digest = hashlib.sha256(scope["path"].encode() + b"\0" + body).hexdigest()

        stored = await self._begin(caller, key, digest)
        if stored is not None:
            await _replay(send, stored, digest)
            return

        captured = _Captured()

        async def replay_receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                captured.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                captured.body += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            await self._finish(caller, key, captured)

    async def _begin(self, caller: str, key: str, digest: str) -> IdempotentResponse | None:
        """Reserve the key; return the stored record if the key was used before."""
        async with self.db.transaction() as session:
            existing = (
                await session.exec(
                    select(IdempotentResponse)
                    .where(IdempotentResponse.scope == caller, IdempotentResponse.key == key)
                    .with_for_update()
                )
            ).first()
            if existing is None:
                session.add(IdempotentResponse(scope=caller, key=key, request_hash=digest))
                return None
            expired = existing.status is None and (
                _aware(existing.created_at) < utcnow() - PENDING_EXPIRES_AFTER
            )
            if expired:
                existing.request_hash = digest
                existing.created_at = utcnow()
                session.add(existing)
                return None
            return existing

    async def _finish(self, caller: str, key: str, captured: _Captured) -> None:
        status = captured.status
        where = (col(IdempotentResponse.scope) == caller, col(IdempotentResponse.key) == key)
        async with self.db.transaction() as session:
            if status is None or status >= 500:
                # Failed on our side: forget the key so the client can retry with it.
                await (await session.connection()).execute(delete(IdempotentResponse).where(*where))
                return
            row = (await session.exec(select(IdempotentResponse).where(*where))).first()
            if row is None:
                return
            row.status = status
            row.content_type = captured.headers.get("content-type")
            row.body = captured.body
            row.headers = json.dumps(
                {
                    k: v
                    for k, v in captured.headers.items()
                    if k in ("etag", "location", "content-type")
                }
            )
            session.add(row)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


async def _replay(send: Send, stored: IdempotentResponse, digest: str) -> None:
    if stored.request_hash != digest:
        await _send_problem(
            send,
            Problem(
                422,
                "idempotency.key_reused",
                "This Idempotency-Key was already used with a different request body.",
            ),
        )
        return
    if stored.status is None:
        await _send_problem(
            send,
            Problem(
                409,
                "idempotency.in_progress",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
            ),
        )
        return
    body = stored.body or b""
    extra = json.loads(stored.headers or "{}")
    raw_headers = [(k.encode(), v.encode()) for k, v in extra.items()]
    raw_headers += [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
    await send({"type": "http.response.start", "status": stored.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
