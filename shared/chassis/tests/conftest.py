"""Fixtures for the chassis' integration tests: a PostgreSQL database with the chassis
tables, a running FastStream broker, and settings pointing at the test broker."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from cairn_chassis.db import Database
from cairn_chassis.inbox import InboxRecord
from cairn_chassis.messaging import make_broker
from cairn_chassis.outbox import OutboxMessage
from cairn_chassis.settings import ServiceSettings
from cairn_devstack.postgres import acreate_database, drop_database
from faststream.kafka import KafkaBroker
from sqlmodel import SQLModel


@pytest.fixture(scope="session")
def settings(kafka_bootstrap: str) -> ServiceSettings:
    return ServiceSettings(
        service_name="chassis-test",
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_fetch_max_wait_ms=10,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        consumer_max_attempts=3,
        consumer_backoff_initial_s=0.01,
        consumer_backoff_max_s=0.05,
        jwt_secret="test-secret-that-is-long-enough-for-hs256",
    )


@pytest.fixture(scope="session")
async def pg_url() -> AsyncIterator[str]:
    name = f"cairn_chassis_test_{os.getpid()}"
    yield await acreate_database(name)
    await asyncio.to_thread(drop_database, name)


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    database = Database(pg_url)
    tables = [OutboxMessage.__table__, InboxRecord.__table__]  # type: ignore[attr-defined]
    async with database.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.drop_all, tables=tables)
        await conn.run_sync(SQLModel.metadata.create_all, tables=tables)
    yield database
    await database.dispose()


@pytest.fixture
async def broker(settings: ServiceSettings) -> AsyncIterator[KafkaBroker]:
    b = make_broker(settings)
    await b.start()
    yield b
    await b.stop()


@pytest.fixture
def topic() -> str:
    """A fresh topic name per test (auto-created by the first produce)."""
    return f"cairn.test.{uuid.uuid4().hex[:10]}"
