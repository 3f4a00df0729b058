"""Readiness (DESIGN §7): what ``/readyz`` checks, for the APIs and the workers.

Ready means the database answers and its schema is at the Alembic head this code expects
(so the pods of an upgrade wait for the migration Job by themselves); a worker also needs
the brokers. An API does not: its writes go to the outbox, and a Kafka outage must not
take every API pod out of its Service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from faststream.kafka import KafkaBroker
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from cairn_chassis.db import Database
from cairn_chassis.migrations import alembic_config

ReadinessCheck = Callable[[], Awaitable[None]]
Check = tuple[str, ReadinessCheck]
#: Each check of one ``/readyz`` answer is bounded by this (the probes' timeout is longer).
CHECK_TIMEOUT_S = 6.0


class NotReady(Exception):
    """A readiness check's reason, said in words an operator acts on."""


def locate_migrations(package_dir: Path) -> Path:
    """A service's ``migrations/`` folder: packaged inside the wheel, or in the workspace
    beside ``src/`` (also where the images keep it)."""
    packaged = package_dir / "migrations"
    return packaged if packaged.is_dir() else package_dir.parents[1] / "migrations"


class SchemaAtHead:
    """Ready when the database's Alembic revision is the head of this code's migrations,
    or one this code does not know: a later release's migration (migrations are
    expand-only, docs/operations.md), which must not take the old pods of a rolling
    upgrade, or a rollback, out of service. A known older revision, or none, is not ready.
    """

    def __init__(self, db: Database, migrations_dir: Path) -> None:
        script = ScriptDirectory.from_config(alembic_config(migrations_dir, db.url))
        self._db = db
        self.heads = frozenset(script.get_heads())
        self._known = frozenset(rev.revision for rev in script.walk_revisions())

    async def current(self) -> frozenset[str]:
        """The revisions the database is stamped with (empty: never migrated)."""
        async with self._db.engine.connect() as conn:
            return await conn.run_sync(_stamped)

    async def __call__(self) -> None:
        current = await self.current()
        if current == self.heads or current - self._known:
            return
        wanted = ", ".join(sorted(self.heads))
        if not current:
            raise NotReady(f"database not migrated: run `migrate` (this code needs {wanted})")
        raise NotReady(
            f"database schema at {', '.join(sorted(current))}, this code needs {wanted}: "
            "the migration Job has not finished"
        )

    async def wait(self, stopping: asyncio.Event, *, log: Any) -> bool:
        """Until the schema is ready (True) or ``stopping`` is set (False), looking again
        with a growing pause; each miss is logged once per look."""
        delay = 1.0
        while not stopping.is_set():
            try:
                await self()
                return True
            except Exception as exc:
                log.warning("worker.waiting_for_migrations", reason=str(exc), retry_in_s=delay)
            try:
                await asyncio.wait_for(stopping.wait(), timeout=delay)
            except TimeoutError:
                delay = min(delay * 2, 10.0)
        return False


def _stamped(conn: Connection) -> frozenset[str]:
    if not inspect(conn).has_table("alembic_version"):
        return frozenset()
    rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return frozenset(str(row[0]) for row in rows)


class BrokerConnection:
    """Whether the worker's own Kafka client still reaches the cluster: a metadata
    request on the connections its producer already holds (no new client, TLS or SCRAM
    handshake per probe), remembered for ``ttl_s``."""

    def __init__(self, broker: KafkaBroker, *, ttl_s: float = 5.0, timeout_s: float = 4.0) -> None:
        self._broker = broker
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._ok_until = 0.0

    def _client(self) -> Any:
        # FastStream keeps the aiokafka producer it started inside its broker config; its
        # AIOKafkaClient owns the connections. (A FastStream upgrade that moves it fails
        # this check loudly, and tests/test_readiness.py with it.)
        state = getattr(self._broker.config.broker_config.producer, "_producer", None)
        producer = getattr(state, "producer", None)
        if producer is None:
            raise NotReady("the worker is not connected to the brokers yet")
        return producer.client

    async def __call__(self) -> None:
        if time.monotonic() < self._ok_until:
            return
        client = self._client()
        try:
            ok = await asyncio.wait_for(client.fetch_all_metadata(), timeout=self._timeout_s)
        except TimeoutError:
            raise NotReady(f"no answer from the brokers within {self._timeout_s:g} s") from None
        if not ok or not ok.brokers():
            raise NotReady("the brokers answered no metadata")
        self._ok_until = time.monotonic() + self._ttl_s


async def run_checks(checks: Sequence[Check]) -> tuple[bool, dict[str, str]]:
    """Every check in order, each bounded; (all ok, name -> "ok" or why not)."""
    results: dict[str, str] = {}
    for name, check in checks:
        try:
            await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
            results[name] = "ok"
        except NotReady as exc:
            results[name] = f"failed: {exc}"
        except Exception as exc:
            results[name] = f"failed: {exc!r}"
    return all(v == "ok" for v in results.values()), results
