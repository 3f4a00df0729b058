"""The retention sweep deletes only what can no longer be needed, on both databases."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cairn_chassis.db import Database
from cairn_chassis.idempotency import IdempotentResponse
from cairn_chassis.inbox import InboxRecord, record_once
from cairn_chassis.outbox import OutboxMessage, utcnow
from cairn_chassis.retention import chassis_rules, purge_expired
from cairn_chassis.runtime import retention_loop
from cairn_chassis.settings import ServiceSettings
from cairn_devstack.postgres import acreate_database, drop_database
from sqlmodel import SQLModel, col, select

TABLES = [OutboxMessage.__table__, InboxRecord.__table__, IdempotentResponse.__table__]  # type: ignore[attr-defined]
SETTINGS = ServiceSettings(
    retention_outbox_days=7, retention_inbox_days=45, retention_idempotency_key_hours=168
)


@pytest.fixture(params=["postgresql", "sqlite"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "postgresql":
        url = await acreate_database(f"cairn_chassis_retention_test_{os.getpid()}")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'retention.db'}"
    database = Database(url)
    async with database.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.drop_all, tables=TABLES)
        await conn.run_sync(SQLModel.metadata.create_all, tables=TABLES)
    yield database
    await database.dispose()
    if request.param == "postgresql":
        await asyncio.to_thread(drop_database, f"cairn_chassis_retention_test_{os.getpid()}")


def _outbox(created: datetime, published: datetime | None) -> OutboxMessage:
    return OutboxMessage(
        event_id=uuid.uuid4().hex,
        event_type="MilestoneFunded",
        topic="cairn.milestones",
        key="contract-1",
        headers="{}",
        payload="{}",
        created_at=created,
        published_at=published,
    )


async def _ids(db: Database, column: Any) -> set[Any]:
    async with db.session() as session:
        return set((await session.exec(select(column))).all())


async def test_only_expired_rows_go_and_unpublished_events_are_never_purged(
    db: Database,
) -> None:
    now = utcnow()
    old, recent = now - timedelta(days=60), now - timedelta(hours=1)
    async with db.transaction() as session:
        old_published = _outbox(old, old)
        old_unpublished = _outbox(old, None)  # the relay is behind: it must still go out
        recent_published = _outbox(recent, recent)
        session.add_all([old_published, old_unpublished, recent_published])
        for event_id, when in [("evt-old", old), ("evt-recent", recent)]:
            session.add(
                InboxRecord(consumer="c", event_id=event_id, event_type="t", processed_at=when)
            )
        for key, when in [("k-old", now - timedelta(days=8)), ("k-recent", recent)]:
            session.add(IdempotentResponse(scope="m:u", key=key, request_hash="h", created_at=when))

    deleted = await purge_expired(db, chassis_rules(SETTINGS), now)

    assert deleted == {"outbox": 1, "inbox": 1, "idempotency_keys": 1}
    assert await _ids(db, col(OutboxMessage.event_id)) == {
        old_unpublished.event_id,
        recent_published.event_id,
    }
    assert await _ids(db, col(InboxRecord.event_id)) == {"evt-recent"}
    assert await _ids(db, col(IdempotentResponse.key)) == {"k-recent"}
    # A redelivery of an event still within retention is still a no-op.
    async with db.transaction() as session:
        assert not await record_once(session, "c", "evt-recent", "t")


async def test_a_backlog_larger_than_a_batch_is_purged_in_one_sweep(db: Database) -> None:
    now = utcnow()
    old = now - timedelta(days=60)
    async with db.transaction() as session:
        session.add_all(
            InboxRecord(consumer="c", event_id=f"evt-{i}", event_type="t", processed_at=old)
            for i in range(25)
        )

    deleted = await purge_expired(db, chassis_rules(SETTINGS), now, batch_size=10)

    assert deleted["inbox"] == 25
    assert await _ids(db, col(InboxRecord.event_id)) == set()


async def test_zero_days_keeps_rows_forever(db: Database) -> None:
    now = utcnow()
    async with db.transaction() as session:
        session.add(
            InboxRecord(
                consumer="c",
                event_id="ancient",
                event_type="t",
                processed_at=now - timedelta(days=900),
            )
        )
    keep_all = ServiceSettings(
        retention_outbox_days=0, retention_inbox_days=0, retention_idempotency_key_hours=0
    )

    assert chassis_rules(keep_all) == []
    assert await purge_expired(db, chassis_rules(keep_all), now) == {}
    assert await _ids(db, col(InboxRecord.event_id)) == {"ancient"}


async def test_the_worker_loop_sweeps_until_stopped(db: Database) -> None:
    old = utcnow() - timedelta(days=60)
    async with db.transaction() as session:
        session.add(InboxRecord(consumer="c", event_id="stale", event_type="t", processed_at=old))
    settings = SETTINGS.model_copy(update={"retention_sweep_interval_s": 0.05})
    (loop,) = retention_loop(db, settings)
    stopping = asyncio.Event()
    task = asyncio.create_task(loop(stopping))
    try:
        async with asyncio.timeout(10):
            while await _ids(db, col(InboxRecord.event_id)):
                await asyncio.sleep(0.05)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 5)
    assert retention_loop(db, settings.model_copy(update={"retention_sweep_interval_s": 0})) == []
