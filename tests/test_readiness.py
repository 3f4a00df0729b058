"""Readiness as Kubernetes sees it (issue 19, item 2), on the real console scripts: ready
means the schema is at this release's Alembic head; a worker also needs the brokers, an
API does not (its writes go to the outbox). Metrics are on the internal port (item 7)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cairn_devstack.broker import start_broker
from cairn_devstack.postgres import create_database, drop_database
from cairn_devstack.procs import free_port, spawn, terminate
from cairn_devstack.stack import wait_until

pytestmark = pytest.mark.integration

SCRIPT = str(Path(sys.executable).parent / "cairn-contracts")


@pytest.fixture
def database() -> Iterator[str]:
    name = f"cairn_ready_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    yield url
    drop_database(name)


def _env(database_url: str, bootstrap: str, **extra: str) -> dict[str, str]:
    return {
        "CAIRN_ENV": "development",
        "CAIRN_JWT_SECRET": "readiness-secret-long-enough-for-hs256",
        "CAIRN_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CAIRN_KAFKA_CREATE_TOPICS": "true",
        "CAIRN_KAFKA_FETCH_MAX_WAIT_MS": "10",
        "CAIRN_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "CAIRN_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        "CAIRN_LOG_JSON": "false",
        "PYTHONUNBUFFERED": "1",
        "CONTRACTS_DATABASE_URL": database_url,
        "CONTRACTS_API_HOST": "127.0.0.1",
        **extra,
    }


def _migrate(env: dict[str, str]) -> None:
    subprocess.run([SCRIPT, "migrate"], check=True, env=os.environ | env, capture_output=True)


def _get(url: str) -> httpx.Response:
    try:
        return httpx.get(url, timeout=10)
    except httpx.TransportError:
        return httpx.Response(599)


def test_an_api_is_ready_once_migrated_whatever_the_brokers_do(
    database: str, tmp_path: Path
) -> None:
    port, internal = free_port(), free_port()
    env = _env(
        database,
        f"127.0.0.1:{free_port()}",  # nothing listens: the brokers are down throughout
        CONTRACTS_API_PORT=str(port),
        CONTRACTS_INTERNAL_PORT=str(internal),
    )
    api = spawn([SCRIPT, "api"], env=env, log_path=tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _get(base + "/healthz").status_code == 200, timeout=30, what="api")
        unmigrated = _get(base + "/readyz")
        assert unmigrated.status_code == 503, "an unmigrated database is not ready"
        assert unmigrated.json()["checks"]["database"] == "ok"
        assert unmigrated.json()["checks"]["schema"].startswith("failed: database not migrated")

        _migrate(env)  # the migration Job; the pod becomes ready by itself, no restart
        ready = _get(base + "/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "schema": "ok"}, "no broker check"

        # Metrics: on the internal port only, without the workers' series.
        assert _get(base + "/metrics").status_code == 404
        metrics = _get(f"http://127.0.0.1:{internal}/metrics").text
        assert "cairn_http_requests_total" in metrics
        for worker_metric in ("cairn_events_consumed", "cairn_outbox_published", "cairn_retention"):
            assert worker_metric not in metrics
    finally:
        terminate(api)


def test_a_worker_waits_for_the_schema_and_is_ready_only_with_the_brokers(
    database: str, tmp_path: Path
) -> None:
    kafka_port, internal = free_port(), free_port()
    broker = start_broker(kafka_port, log_path=tmp_path / "tansu.log")
    env = _env(database, f"127.0.0.1:{kafka_port}", CONTRACTS_INTERNAL_PORT=str(internal))
    worker = spawn([SCRIPT, "worker"], env=env, log_path=tmp_path / "worker.log")
    base = f"http://127.0.0.1:{internal}"
    try:
        wait_until(lambda: _get(base + "/healthz").status_code == 200, timeout=30, what="worker")
        waiting = _get(base + "/readyz")
        assert waiting.status_code == 503
        assert waiting.json()["checks"]["schema"].startswith("failed: database not migrated")
        assert _get(base + "/healthz").status_code == 200, "waiting is alive, not a restart"

        _migrate(env)
        wait_until(lambda: _get(base + "/readyz").status_code == 200, timeout=60, what="ready")
        log = tmp_path / "worker.log"
        wait_until(lambda: "worker.started" in log.read_text(), timeout=30, what="consumers")
        assert "worker.waiting_for_migrations" in log.read_text()
        metrics = _get(base + "/metrics").text
        assert "cairn_outbox_oldest_unpublished_age_seconds 0.0" in metrics

        terminate(broker)  # a Kafka outage
        wait_until(lambda: _get(base + "/readyz").status_code == 503, timeout=30, what="unready")
        checks = _get(base + "/readyz").json()["checks"]
        assert checks["database"] == checks["schema"] == "ok"
        assert checks["broker"].startswith("failed")
        assert _get(base + "/healthz").status_code == 200
    finally:
        terminate(worker)
        terminate(broker)
