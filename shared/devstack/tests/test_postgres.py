"""Throw-away databases on the local PostgreSQL."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped,unused-ignore]
import pytest
from cairn_devstack.postgres import acreate_database, create_database, drop_database


async def test_create_database_gives_an_empty_database_each_time(
    postgres_admin_url: str,
) -> None:
    name = f"devstack_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    assert url.startswith("postgresql+asyncpg://")
    assert urlsplit(url).path == "/" + name  # a Unix-socket URL keeps its ?host= after
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(plain)
    try:
        await conn.execute("CREATE TABLE leftover (id int)")
    finally:
        await conn.close()

    # Recreating drops what was there, even with a connection still open.
    holder = await asyncpg.connect(plain)
    try:
        await acreate_database(name)
    finally:
        await holder.close()
    conn = await asyncpg.connect(plain)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.leftover')") is None
    finally:
        await conn.close()
        drop_database(name)


def test_database_names_are_checked() -> None:
    with pytest.raises(ValueError, match="database name"):
        create_database('x"; DROP DATABASE postgres; --')
