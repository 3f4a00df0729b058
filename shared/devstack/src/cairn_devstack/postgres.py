"""Throw-away PostgreSQL databases for integration tests (the server is already running
on development machines; DESIGN §9; under pytest, :mod:`cairn_devstack.testdb` finds or
starts one when it is not)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from cairn_devstack.procs import run_sync

__all__ = [
    "DEFAULT_ADMIN_URL",
    "acreate_database",
    "admin_url",
    "create_database",
    "drop_database",
    "use_resolver",
]

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_resolver: Callable[[], str] | None = None


def use_resolver(resolver: Callable[[], str] | None) -> None:
    """Let ``resolver`` answer :func:`admin_url` (the pytest plugin registers one that
    finds or starts a server, :class:`cairn_devstack.testdb.TestPostgres`); None undoes it."""
    global _resolver
    _resolver = resolver


def admin_url() -> str:
    """The registered resolver's answer; else ``CAIRN_TEST_POSTGRES_URL`` if set, else the
    local ``postgres`` superuser database."""
    if _resolver is not None:
        return _resolver()
    return os.environ.get("CAIRN_TEST_POSTGRES_URL") or DEFAULT_ADMIN_URL


def _with(url: str, *, scheme: str, database: str | None = None) -> str:
    parts = urlsplit(url)
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit((scheme, parts.netloc, path, parts.query, parts.fragment))


def _checked(name: str) -> str:
    # The name goes into DDL, which cannot take bind parameters.
    if not _NAME.match(name):
        raise ValueError(f"database name must match {_NAME.pattern}: {name!r}")
    return name


async def acreate_database(name: str, *, admin: str | None = None) -> str:
    """Drop ``name`` if it exists, create it empty, return its ``postgresql+asyncpg://`` URL."""
    _checked(name)
    base = admin or admin_url()
    conn = await asyncpg.connect(_with(base, scheme="postgresql"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with(base, scheme="postgresql+asyncpg", database=name)


def create_database(name: str, *, admin: str | None = None) -> str:
    """Synchronous :func:`acreate_database` (safe to call from inside an event loop)."""
    return run_sync(acreate_database(name, admin=admin))


async def _drop(name: str, admin: str | None) -> None:
    conn = await asyncpg.connect(_with(admin or admin_url(), scheme="postgresql"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)')
    finally:
        await conn.close()


def drop_database(name: str, *, admin: str | None = None) -> None:
    """Drop ``name`` if it exists (connections to it are closed by force)."""
    run_sync(_drop(name, admin))
