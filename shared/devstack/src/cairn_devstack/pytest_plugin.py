"""pytest fixtures that start Cairn's local stand-ins as real processes on free ports.

Load it from the root ``conftest.py`` with
``pytest_plugins = ["cairn_devstack.pytest_plugin"]``. Every fixture is session-scoped:
one broker, one localstripe, one mail sink per test run, stopped at the end. Tests that
need a clean slate call ``stripe_server.flush()`` / ``mail_sink.clear()``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from cairn_devstack.broker import start_broker
from cairn_devstack.postgres import (
    acreate_database,
    admin_url,
    create_database,
    drop_database,
    use_resolver,
)
from cairn_devstack.procs import free_port, terminate
from cairn_devstack.testdb import NoPostgres, TestPostgres, docker_answers
from cairn_devstack.testing import (
    MailSinkProcess,
    StripeServer,
    start_mail_sink,
    start_stripe_server,
)

__all__ = [
    "MailSinkProcess",
    "StripeServer",
    "acreate_database",
    "create_database",
    "drop_database",
    "kafka_bootstrap",
    "mail_sink",
    "postgres_admin_url",
    "stripe_server",
]

log = logging.getLogger(__name__)


def pytest_configure(config: pytest.Config) -> None:
    """The tests' PostgreSQL, found or started on first use (cairn_devstack.testdb): the
    local server, else a container, else a throw-away server from a wheel, else the
    session stops with one line that says how to set CAIRN_TEST_POSTGRES_URL."""
    postgres = TestPostgres()

    def resolve() -> str:
        try:
            return postgres.url()
        except NoPostgres as exc:
            pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)

    use_resolver(resolve)

    def stop() -> None:
        use_resolver(None)
        postgres.stop()

    config.add_cleanup(stop)


def _kafka_container_class() -> Any:
    """testcontainers' KafkaContainer (new or old module path), or None if not installed."""
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:
        try:
            from testcontainers.kafka import KafkaContainer
        except ImportError:
            return None
    return KafkaContainer


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Kafka bootstrap address: ``$KAFKA_BOOTSTRAP_SERVERS``, else testcontainers' Kafka
    when a Docker engine answers, else a memory-only tansu broker on a free port.

    Against tansu use the idempotent producer off and short consumer timeouts
    (:data:`cairn_devstack.broker.LOCAL_CONSUMER_SETTINGS`); create topics first.
    """
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        log.info("kafka_bootstrap: KAFKA_BOOTSTRAP_SERVERS=%s", configured)
        yield configured
        return
    container_class = _kafka_container_class()
    if container_class is not None and docker_answers():
        with container_class() as kafka:
            log.info("kafka_bootstrap: testcontainers Kafka")
            yield str(kafka.get_bootstrap_server())
        return
    port = free_port()
    proc = start_broker(port, log_path=tmp_path_factory.mktemp("tansu") / "tansu.log")
    log.info("kafka_bootstrap: tansu on 127.0.0.1:%d (pid %d)", port, proc.pid)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        terminate(proc)


@pytest.fixture(scope="session")
def stripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StripeServer]:
    """localstripe with Cairn's Connect extension, in a child process with its own store.

    ``.api_base``/``.api_key`` for the ``stripe`` SDK (or ``.client()``), plus
    ``stats()``, ``set_faults(...)``, ``clear_faults()``, ``register_webhook(url, secret)``,
    ``enable_payouts(account_id)``, ``flush()``.
    """
    server = start_stripe_server(tmp_path_factory.mktemp("localstripe"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mail_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSinkProcess]:
    """The SMTP sink in a child process: ``smtp_host``/``smtp_port``, ``http_url``,
    ``messages()``, ``clear()``, ``set_faults(...)``, ``clear_faults()``, and
    ``stop()``/``start()`` to simulate an outage."""
    sink = start_mail_sink(tmp_path_factory.mktemp("mailsink"))
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """Superuser URL of the test PostgreSQL (``$CAIRN_TEST_POSTGRES_URL`` or local)."""
    return admin_url()
