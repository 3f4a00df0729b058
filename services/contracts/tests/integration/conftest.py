"""The contracts service against a real PostgreSQL: one throw-away database per test
session (unique suffix, dropped at the end) with the service's Alembic migrations, the API
app driven in-process over ASGI, and the payments outcomes injected through the very
consumer handlers Kafka drives."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg  # type: ignore[import-untyped,unused-ignore]
import httpx
import pytest
from cairn_chassis.db import Database
from cairn_chassis.migrations import upgrade
from cairn_contracts.config import Settings
from cairn_contracts.entrypoints.api import create_api
from cairn_devstack.postgres import create_database, drop_database
from fastapi import FastAPI

from .helpers import JWT_SECRET, Api

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def fresh_database(admin: str) -> Iterator[str]:
    """A migrated database with a per-run name; dropped when the generator finishes."""
    name = f"cairn_contracts_test_{uuid.uuid4().hex[:8]}"
    url = create_database(name, admin=admin)
    # upgrade() calls asyncio.run: keep it off any running event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(upgrade, MIGRATIONS, url).result()
        pool.submit(asyncio.run, _no_commit_flush_wait(url, name)).result()
    try:
        yield url
    finally:
        drop_database(name, admin=admin)


async def _no_commit_flush_wait(url: str, name: str) -> None:
    """A throw-away database need not wait for each commit's WAL flush: on a busy shared
    disk those waits made the suite's runtime swing from seconds to minutes."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> Iterator[str]:
    yield from fresh_database(postgres_admin_url)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, jwt_secret=JWT_SECRET, log_json=False)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_api(settings)
    yield application
    await application.state.db.dispose()


@pytest.fixture(scope="session")
def db(app: FastAPI) -> Database:
    """The app's own database handle (the consumers and timers share it, as in the worker)."""
    database: Database = app.state.db
    return database


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://contracts") as c:
        yield c


@pytest.fixture
def api(client: httpx.AsyncClient, settings: Settings, db: Database) -> Api:
    return Api(client, settings, db)
