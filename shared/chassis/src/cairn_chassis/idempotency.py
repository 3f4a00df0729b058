"""``Idempotency-Key`` on POST (DESIGN §7): a repeated key returns the first response.

The key is scoped to the verified caller (token subject and marketplace; a request whose
token does not verify is passed to the route, which refuses it). A repeat with a different
body is refused with 422 ``idempotency.key_reused``; a repeat while the first request is
still running gets 409 ``idempotency.in_progress``. Only responses below 500 are kept (a
5xx rolls the request's writes back), so a request that failed on our side can be retried
with the same key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, Text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn_chassis.auth import TokenVerifier
from cairn_chassis.db import Database, locked
from cairn_chassis.errors import PROBLEM_JSON, Problem
from cairn_chassis.outbox import utcnow


class IdempotentResponse(SQLModel, table=True):
    """The first response given for one caller's Idempotency-Key."""

    __tablename__ = "idempotency_keys"
    # The retention sweep's range scan (cairn_chassis.retention).
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    scope: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    status: int | None = Field(default=None, nullable=True)
    content_type: str | None = Field(default=None, nullable=True)
    body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    headers: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


def caller_scope(marketplace_id: str, user_id: str) -> str:
    """The namespace of one caller's keys: a digest of the (marketplace, subject) pair.

    Structured, not joined: ``f"{marketplace}:{sub}"`` made marketplace ``a:b`` with
    subject ``c`` the same caller as marketplace ``a`` with subject ``b:c``, and one
    tenant was served the other's stored answer (issue 16). The JSON array keeps the two
    apart whatever they hold; the digest keeps the column's width (no migration) however
    long the claims are.
    """
    pair = json.dumps([marketplace_id, user_id], ensure_ascii=False)
    return hashlib.sha256(pair.encode()).hexdigest()


async def _caller_scope(verifier: TokenVerifier, authorization: str) -> str | None:
    """The verified caller's namespace for keys, or None if the token does not verify.

    Only a verified token may see a stored answer: a replay must never hand one caller's
    response (a client secret, say) to someone who merely names them in a forged token.
    """
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        principal = await verifier.averify(token.strip())
    except Problem:
        return None
    return caller_scope(principal.marketplace_id, principal.user_id)


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


class _Rollback(Exception):
    """Internal: the request failed on our side; undo its writes, keep the key open."""


class IdempotencyMiddleware:
    """Pure ASGI middleware storing the first response for each (caller, key).

    The request runs inside one database transaction (``Database.request_transaction``)
    that also holds the key's row lock and stores the answer: the command's writes and
    its stored answer commit together or not at all. So a retry after a crash either
    replays the answer (the command was done) or runs the command (it was not) — it never
    meets a done command without its answer. While the first request runs, its row lock
    makes a concurrent retry answer 409 ``idempotency.in_progress`` at once.
    """

    def __init__(self, app: ASGIApp, db: Database, verifier: TokenVerifier) -> None:
        self.app = app
        self.db = db
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        # Header bytes are Latin-1 (as Starlette reads them): a byte that is not UTF-8 in a
        # header must give the route's own answer, not a 500 (found by schemathesis).
        headers = Headers(scope=scope)
        key = headers.get("idempotency-key")
        if not key:
            await self.app(scope, receive, send)
            return
        caller = await _caller_scope(self.verifier, headers.get("authorization", ""))
        if caller is None:
            # Not authenticated: the route answers (401) and nothing is stored or replayed.
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
        digest = hashlib.sha256(scope["path"].encode() + b"\0" + body).hexdigest()
        await self._reserve(caller, key, digest)

        async def replay_receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        captured = _Captured()
        answer: list[Message] = []

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured.status = message["status"]
                captured.headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message["headers"]
                }
            elif message["type"] == "http.response.body":
                captured.body += message.get("body", b"")
            answer.append(message)

        stored: IdempotentResponse | Problem | None = None
        try:
            async with self.db.request_transaction() as session:
                row = await self._claim(session, caller, key)
                if row is None:
                    stored = _IN_PROGRESS
                elif row.status is not None or row.request_hash != digest:
                    stored = row
                else:
                    await self.app(scope, replay_receive, capture_send)
                    if captured.status is None or captured.status >= 500:
                        raise _Rollback
                    _record(row, captured)
                    session.add(row)
        except _Rollback:
            pass  # the key stays unanswered: a retry runs the request again
        if isinstance(stored, Problem):
            await _send_problem(send, stored)
        elif stored is not None:
            await _replay(send, stored, digest)
        else:
            for message in answer:
                await send(message)

    async def _reserve(self, caller: str, key: str, digest: str) -> None:
        """Create the key's row (unanswered) in its own transaction, if it is new."""
        values = {"scope": caller, "key": key, "request_hash": digest, "created_at": utcnow()}
        insert = pg_insert if self.db.is_postgres else sqlite_insert
        statement = insert(IdempotentResponse).values(**values).on_conflict_do_nothing()
        async with self.db.transaction() as session:
            await (await session.connection()).execute(statement)

    async def _claim(
        self, session: AsyncSession, caller: str, key: str
    ) -> IdempotentResponse | None:
        """Lock the key's row for this request; None if another request holds it."""
        query = select(IdempotentResponse).where(
            IdempotentResponse.scope == caller, IdempotentResponse.key == key
        )
        if self.db.is_postgres:
            return (await session.exec(locked(query, skip_locked=True))).first()
        return (await session.exec(query.execution_options(populate_existing=True))).first()


_IN_PROGRESS = Problem(
    409,
    "idempotency.in_progress",
    "A request with this Idempotency-Key is still being processed; retry shortly.",
)


def _record(row: IdempotentResponse, captured: _Captured) -> None:
    row.status = captured.status
    row.content_type = captured.headers.get("content-type")
    row.body = captured.body
    row.headers = json.dumps(
        {k: v for k, v in captured.headers.items() if k in ("etag", "location", "content-type")}
    )


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
    body = stored.body or b""
    extra = json.loads(stored.headers or "{}")
    raw_headers = [(k.encode(), v.encode()) for k, v in extra.items()]
    raw_headers += [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
    await send({"type": "http.response.start", "status": stored.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
