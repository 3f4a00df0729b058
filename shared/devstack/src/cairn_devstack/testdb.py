"""Which PostgreSQL the tests use, and starting one when the machine has none.

In order: ``$CAIRN_TEST_POSTGRES_URL`` (used as it is, never replaced); else the local
server at 127.0.0.1:5432 if it answers (DESIGN §9: development machines and CI have
one); else testcontainers' PostgreSQL where a Docker engine answers; else a throw-away
server from the ``pgserver`` wheel (PostgreSQL binaries on PyPI); else
:class:`NoPostgres`, whose message says in one line what to set. The server found or
started is written to ``$CAIRN_TEST_POSTGRES_URL``, so every later
:func:`cairn_devstack.postgres.admin_url` and every child process uses the same one.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

ENV = "CAIRN_TEST_POSTGRES_URL"
HOW_TO = (
    f"set {ENV}=postgresql://USER[:PASSWORD]@HOST:PORT/postgres "
    "(a superuser that may create databases), or start PostgreSQL at 127.0.0.1:5432 "
    "(trust auth, user postgres), or Docker"
)
# Tests open many pools at once (three services, API and worker each): more than the
# default 100 connections.
_SERVER_SETTINGS = {"max_connections": "300", "fsync": "off"}


class NoPostgres(RuntimeError):
    """No PostgreSQL for the tests; the message is one line saying how to get one."""


def answers(url: str, timeout: float = 1.0) -> bool:
    """True if something accepts connections where ``url`` points (TCP or Unix socket)."""
    parts = urlsplit(url)
    socket_dir = parse_qs(parts.query).get("host", [""])[0]
    try:
        if socket_dir.startswith("/"):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(timeout)
                s.connect(f"{socket_dir}/.s.PGSQL.{parts.port or 5432}")
        else:
            with socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or 5432), timeout=timeout
            ):
                pass
    except OSError:
        return False
    return True


def docker_answers() -> bool:
    """True if a Docker engine answers a ping within a couple of seconds."""
    try:
        import docker  # type: ignore[import-untyped,unused-ignore]

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no permission: all mean "no Docker"
        return False


Started = tuple[str, Callable[[], None]]
"""A server's admin URL and how to stop it."""


def start_container() -> Started:
    """testcontainers' PostgreSQL (user postgres); its URL has no driver."""
    from testcontainers.postgres import PostgresContainer

    container: Any = PostgresContainer(
        "postgres:16-alpine", username="postgres", password="postgres", dbname="postgres"
    )
    container.start()
    return str(container.get_connection_url(driver=None)), container.stop


def start_wheel_server(folder: Path) -> Started:
    """A PostgreSQL from the ``pgserver`` wheel with its data in ``folder`` (Unix socket,
    trust auth, user postgres); deleted when stopped."""
    from pgserver.postgres_server import get_server

    pgdata = folder / "pgdata"
    server = get_server(pgdata, cleanup_mode="stop")
    for name, value in _SERVER_SETTINGS.items():
        server.psql(f"ALTER SYSTEM SET {name} = '{value}';")
    server.cleanup()  # stops it; the settings apply from the next start
    server = get_server(pgdata, cleanup_mode="delete")
    return str(server.get_uri()), server.cleanup


@dataclass
class TestPostgres:
    """Finds or starts the tests' PostgreSQL once, on first use; :meth:`stop` ends what
    it started. The strategies are parameters so a test can leave some out."""

    __test__ = False  # not a pytest test class

    default_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    docker: Callable[[], bool] = docker_answers
    container: Callable[[], Started] | None = start_container
    wheel: Callable[[Path], Started] | None = start_wheel_server
    _url: str | None = None
    _stop: list[Callable[[], None]] = field(default_factory=list)

    def url(self) -> str:
        """The admin URL (written to ``$CAIRN_TEST_POSTGRES_URL``); NoPostgres if none."""
        if self._url is None:
            self._url = self._resolve()
            os.environ[ENV] = self._url
        return self._url

    def _resolve(self) -> str:
        configured = os.environ.get(ENV)
        if configured:
            if not answers(configured):
                raise NoPostgres(
                    f"{ENV}={configured} does not answer: start that server, or point {ENV} "
                    "at one that does"
                )
            return configured
        if answers(self.default_url):
            return self.default_url
        default = urlsplit(self.default_url)
        tried = [f"nothing answers at {default.hostname}:{default.port or 5432}"]
        if self.container is not None and self.docker():
            log.info("test PostgreSQL: none at %s; starting a container", self.default_url)
            return self._started(self.container())
        tried.append("no Docker engine")
        if self.wheel is not None:
            try:
                folder = Path(tempfile.mkdtemp(prefix="cairn-test-postgres-"))
                log.info("test PostgreSQL: starting pgserver in %s", folder)
                return self._started(self.wheel(folder))
            except Exception as exc:  # not installed, or it would not start here
                tried.append(f"pgserver failed ({type(exc).__name__}: {exc})".replace("\n", " "))
        raise NoPostgres(f"No PostgreSQL for the tests ({'; '.join(tried)}): {HOW_TO}")

    def _started(self, started: Started) -> str:
        url, stop = started
        self._stop.append(stop)
        return url

    def stop(self) -> None:
        """Stop the server this object started, if any."""
        while self._stop:
            self._stop.pop()()
