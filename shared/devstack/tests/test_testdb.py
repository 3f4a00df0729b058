"""The tests' PostgreSQL on a machine without one at 127.0.0.1:5432 (issue 19, item 14):
a throw-away server from the pgserver wheel when there is no Docker, and one clear line
when nothing works. The detection is pointed at a closed port."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import NoReturn

import asyncpg  # type: ignore[import-untyped,unused-ignore]
import pytest
from cairn_chassis.db import Database
from cairn_devstack.postgres import acreate_database, drop_database
from cairn_devstack.procs import free_port
from cairn_devstack.testdb import ENV, NoPostgres, Started, TestPostgres, answers
from sqlalchemy import text


def closed_url() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"


def never(*_: object) -> NoReturn:
    raise AssertionError("must not be started")


def test_the_local_server_is_used_when_it_answers(
    postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    pg = TestPostgres(default_url=postgres_admin_url, docker=never, container=never, wheel=never)
    assert pg.url() == postgres_admin_url
    assert os.environ[ENV] == postgres_admin_url


def test_nothing_answering_and_nothing_to_start_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    url = closed_url()
    pg = TestPostgres(default_url=url, docker=lambda: False, container=never, wheel=None)
    with pytest.raises(NoPostgres) as caught:
        pg.url()
    message = str(caught.value)
    assert "\n" not in message
    assert f"nothing answers at {url.split('@')[1].split('/')[0]}" in message
    assert "no Docker engine" in message
    assert f"set {ENV}=postgresql://" in message
    assert ENV not in os.environ


def test_a_configured_url_that_does_not_answer_is_not_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = closed_url()
    monkeypatch.setenv(ENV, url)
    pg = TestPostgres(docker=never, container=never, wheel=never)
    with pytest.raises(NoPostgres, match=f"{ENV}={url} does not answer"):
        pg.url()


def test_a_wheel_that_fails_is_named_in_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)

    def broken(_: Path) -> Started:
        raise OSError("initdb: cannot run\nas root")

    pg = TestPostgres(default_url=closed_url(), docker=lambda: False, container=never, wheel=broken)
    with pytest.raises(NoPostgres) as caught:
        pg.url()
    assert "pgserver failed (OSError: initdb: cannot run as root)" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.integration
async def test_without_docker_a_server_from_the_wheel_runs_the_tests_databases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    pg = TestPostgres(default_url=closed_url(), docker=lambda: False, container=never)
    try:
        admin = pg.url()
        assert os.environ[ENV] == admin
        assert answers(admin)
        # What the suites do with it: a fresh database, used through the services' own
        # SQLAlchemy layer, with room for their connection pools.
        name = f"testdb_{uuid.uuid4().hex[:8]}"
        url = await acreate_database(name, admin=admin)
        db = Database(url)
        try:
            async with db.transaction() as session:
                conn = await session.connection()
                assert (await conn.execute(text("SELECT current_database()"))).scalar() == name
                max_connections = (await conn.execute(text("SHOW max_connections"))).scalar()
                assert int(str(max_connections)) >= 300
        finally:
            await db.dispose()
        await asyncpg_drop(name, admin)
    finally:
        pg.stop()
    assert not answers(admin), "stopped with the session"


async def asyncpg_drop(name: str, admin: str) -> None:
    drop_database(name, admin=admin)
    conn = await asyncpg.connect(admin)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname=$1", name) == 0
    finally:
        await conn.close()


def test_pytest_stops_with_one_line_when_there_is_no_postgres(tmp_path: Path) -> None:
    """Through the plugin, as `make test` meets it: the first test that needs a database
    ends the session with one line saying what to set."""
    (tmp_path / "test_needs_db.py").write_text(
        textwrap.dedent(
            """
            from cairn_devstack.postgres import create_database

            def test_needs_a_database():
                create_database("never_created")
            """
        )
    )
    url = closed_url()
    env = {**os.environ, ENV: url}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "cairn_devstack.pytest_plugin",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if f"{ENV}={url} does not answer" in line]
    assert len(lines) == 1, result.stdout
    assert f"point {ENV} at one that does" in lines[0]
