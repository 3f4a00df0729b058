"""Correlation (issue 19, item 4): a request's id in, out and in every log line, one
access-log line per request; a consumer's log lines name the event they handle, and
the events it writes name that event as their cause."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import httpx
import structlog
from cairn_chassis.db import Database
from cairn_chassis.http import create_app
from cairn_chassis.logging import get_logger
from cairn_chassis.messaging import EventRouter, make_broker, subscribe
from cairn_chassis.outbox import OutboxMessage, add_event
from cairn_chassis.settings import ServiceSettings
from cairn_devstack.broker import create_topics
from cairn_schemas.base import Actor
from cairn_schemas.cloudevents import Envelope, to_kafka
from cairn_schemas.events import MessagePosted
from fastapi import APIRouter
from sqlmodel import select

router = APIRouter(prefix="/v1")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def posted(n: int) -> MessagePosted:
    return MessagePosted(
        marketplace_id="mk",
        contract_id="ct_1",
        message_id=f"m{n}",
        author=Actor(user_id="u", role="customer"),
        body=f"hello {n}",
    )


async def produce(settings: ServiceSettings, topic: str, headers: list[tuple[str, bytes]]) -> None:
    broker = make_broker(settings)
    await broker.start()
    try:
        value = posted(1).model_dump_json().encode()
        await broker.publish(value, topic, key=b"ct_1", headers={k: v.decode() for k, v in headers})
    finally:
        await broker.stop()


@router.get("/hello")
async def hello() -> dict[str, str]:
    get_logger("test").info("hello.said")
    return {"hello": "world"}


async def test_a_request_id_is_accepted_echoed_and_in_every_log_line(
    settings: ServiceSettings, db: Database
) -> None:
    app = create_app(
        settings, db, title="t", version="1", description="d", routers=[router], migrations=None
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs:
            given = await client.get("/v1/hello", headers={"x-request-id": "gw-7f3a.42:9"})
            bad = await client.get("/v1/hello", headers={"x-request-id": "two\nlines"})
            none = await client.get("/nowhere")
    assert given.headers["x-request-id"] == "gw-7f3a.42:9"
    assert UUID.fullmatch(bad.headers["x-request-id"]), "an unusable id is replaced"
    assert UUID.fullmatch(none.headers["x-request-id"])
    said = [e for e in logs if e["event"] == "hello.said"]
    assert [e["request_id"] for e in said] == ["gw-7f3a.42:9", bad.headers["x-request-id"]]
    access = [e for e in logs if e["event"] == "http.request"]
    assert [(e["request_id"], e["route"], e["status"]) for e in access] == [
        ("gw-7f3a.42:9", "/v1/hello", 200),
        (bad.headers["x-request-id"], "/v1/hello", 200),
        (none.headers["x-request-id"], "unmatched", 404),
    ]
    assert all(e["method"] == "GET" and e["duration_ms"] >= 0 for e in access)


async def test_a_consumer_logs_the_event_and_its_events_name_it_as_their_cause(
    settings: ServiceSettings, db: Database, kafka_bootstrap: str
) -> None:
    topic = f"test.correlation.{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, {topic: 1, f"{topic}.dlq": 1})
    router = EventRouter("correlation-test")
    done = asyncio.Event()

    @router.on(MessagePosted)
    async def on_posted(envelope: Envelope[MessagePosted]) -> None:
        get_logger("test").info("handler.ran")
        async with db.transaction() as session:
            add_event(session, posted(99), source="/cairn/test")
        done.set()

    broker = make_broker(settings)
    subscribe(broker, settings, router, topics=[topic], dlq_topic=f"{topic}.dlq")
    cause = to_kafka(posted(1), source="/cairn/test")
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        await broker.start()
        try:
            await produce(settings, topic, cause.headers)
            await asyncio.wait_for(done.wait(), timeout=30)
        finally:
            await broker.stop()
    cause_id = dict(cause.headers)["ce_id"].decode()
    [line] = [e for e in logs if e["event"] == "handler.ran"]
    assert line["event_id"] == cause_id
    assert line["event_type"] == "cairn.message.posted"
    assert line["contract_id"] == posted(1).contract_id
    assert line["consumer"] == "correlation-test"
    async with db.transaction() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    [row] = [r for r in rows if json.loads(r.headers).get("ce_causationid") == cause_id]
    assert row.event_type == "cairn.message.posted"
    async with db.transaction() as session:
        add_event(session, posted(100), source="/cairn/test")  # outside any handler
    async with db.transaction() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    assert sum("ce_causationid" not in json.loads(r.headers) for r in rows) == 1
