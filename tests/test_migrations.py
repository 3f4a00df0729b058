"""Each service's migrations build exactly the schema its models describe.

A model changed without a migration (or a migration that drifted from the model) would
work in the tests that create tables from the models and fail on a migrated production
database; this compares the two on a freshly migrated PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cairn_chassis import idempotency, inbox, outbox  # noqa: F401 - register the tables
from cairn_chassis.migrations import upgrade
from cairn_devstack.postgres import acreate_database, drop_database
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ["contracts", "payments", "notifications"]


# Every service's database also holds the chassis' tables.
CHASSIS_TABLES = {"outbox", "inbox", "idempotency_keys"}


def _tables_of(service: str) -> set[str]:
    """The tables the service's models declare (one process holds all three services'
    models in SQLModel's shared metadata, so the comparison is limited to these)."""
    module = importlib.import_module(f"cairn_{service}.adapters.tables")
    return CHASSIS_TABLES | {
        obj.__table__.name
        for obj in vars(module).values()
        if isinstance(obj, type) and obj.__module__ == module.__name__ and hasattr(obj, "__table__")
    }


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_match_the_models(service: str) -> None:
    own = _tables_of(service)
    metadata = SQLModel.metadata
    name = f"cairn_migrations_{service}_test_{os.getpid()}"
    url = await acreate_database(name)
    try:
        await asyncio.to_thread(upgrade, ROOT / "services" / service / "migrations", url)
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:

                def diff(sync_conn: Any) -> list[Any]:
                    def include(obj: Any, name: str | None, kind: str, *_: Any) -> bool:
                        table = obj if kind == "table" else getattr(obj, "table", None)
                        return table is None or table.name in own

                    context = MigrationContext.configure(
                        sync_conn, opts={"compare_type": True, "include_object": include}
                    )
                    return list(compare_metadata(context, metadata))

                differences = await conn.run_sync(diff)
        finally:
            await engine.dispose()
    finally:
        drop_database(name)
    assert len(own) > len(CHASSIS_TABLES)  # the service's own tables were found
    assert differences == []
