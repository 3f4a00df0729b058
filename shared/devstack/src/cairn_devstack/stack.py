"""Cairn's three services as separate processes (API + worker each), wired to a broker,
localstripe, an SMTP server and one database per service.

The end-to-end tests and ``make run`` both use it, so what the tests prove is what a
developer runs: each process is started with the console script, exactly as in an image.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cairn_devstack.procs import ProcessStartError, free_port, spawn, terminate, wait_for

SERVICES = ("contracts", "payments", "notifications")
ROLES = ("api", "worker")


@dataclass
class Infra:
    """Addresses of what the services talk to."""

    kafka_bootstrap: str
    stripe_api_base: str
    stripe_api_key: str
    stripe_webhook_secret: str
    smtp_host: str
    smtp_port: int
    database_urls: dict[str, str]
    jwt_secret: str
    frontend_url_pattern: str = "http://localhost:3000/{marketplace_id}/contracts/{contract_id}"
    operator_alert_addresses: str = "operators@cairn.localhost"


@dataclass
class CairnStack:
    """Starts, stops and restarts the six service processes."""

    infra: Infra
    log_dir: Path
    api_ports: dict[str, int] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[tuple[str, str], subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for service in SERVICES:
            self.api_ports.setdefault(service, free_port())

    def url(self, service: str) -> str:
        """Base URL of a service's API."""
        return f"http://127.0.0.1:{self.api_ports[service]}"

    def env(self, service: str) -> dict[str, str]:
        """The environment a service's processes get."""
        i = self.infra
        prefix = service.upper()
        env = {
            "CAIRN_KAFKA_BOOTSTRAP_SERVERS": i.kafka_bootstrap,
            "CAIRN_KAFKA_CREATE_TOPICS": "true",
            # tansu answers a waiting fetch only when this runs out (DESIGN §9).
            "CAIRN_KAFKA_FETCH_MAX_WAIT_MS": "10",
            "CAIRN_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "CAIRN_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "CAIRN_JWT_SECRET": i.jwt_secret,
            # Local stand-ins, SQLite files, a published JWT secret: a production service
            # would refuse them (CAIRN_ENV defaults to production).
            "CAIRN_ENV": "development",
            "CAIRN_LOG_LEVEL": "INFO",
            f"{prefix}_DATABASE_URL": i.database_urls[service],
            f"{prefix}_API_PORT": str(self.api_ports[service]),
            f"{prefix}_API_HOST": "127.0.0.1",
        }
        if service == "payments":
            env |= {
                "PAYMENTS_STRIPE_API_BASE": i.stripe_api_base,
                "PAYMENTS_STRIPE_API_KEY": i.stripe_api_key,
                "PAYMENTS_STRIPE_WEBHOOK_SECRET": i.stripe_webhook_secret,
            }
        if service == "notifications":
            env |= {
                "NOTIFICATIONS_SMTP_HOST": i.smtp_host,
                "NOTIFICATIONS_SMTP_PORT": str(i.smtp_port),
                "NOTIFICATIONS_SMTP_STARTTLS": "false",
                "NOTIFICATIONS_FRONTEND_URL_PATTERN": i.frontend_url_pattern,
                "NOTIFICATIONS_OPERATOR_ALERT_ADDRESSES": i.operator_alert_addresses,
                "NOTIFICATIONS_DELIVERY_BACKOFF_INITIAL_S": "0.5",
                "NOTIFICATIONS_DELIVERY_BACKOFF_MAX_S": "5",
                # Retries for an hour: an SMTP outage shorter than that loses no email
                # (issue 16: ten tries in about 40 s lost mail to a one-minute outage).
                "NOTIFICATIONS_DELIVERY_RETRY_WINDOW_S": "3600",
            }
        # OpenTelemetry's own variables (OTEL_TRACES_EXPORTER, ...) reach every process.
        return env | {
            k: v
            for k, v in self.extra_env.items()
            if k.startswith((prefix + "_", "CAIRN_", "OTEL_"))
        }

    def _script(self, service: str) -> str:
        exe = Path(sys.executable).parent / f"cairn-{service}"
        found = str(exe) if exe.exists() else shutil.which(f"cairn-{service}")
        if found is None:
            raise ProcessStartError(f"cairn-{service} is not installed (run `uv sync`)")
        return found

    def migrate(self) -> None:
        """Run every service's migrations (in the foreground)."""
        for service in SERVICES:
            subprocess.run(  # noqa: S603 - our own console script
                [self._script(service), "migrate"],
                check=True,
                env={**os.environ, **self.env(service)},
                stdout=subprocess.DEVNULL,
            )

    def start(self, service: str, role: str) -> subprocess.Popen[bytes]:
        """Start one process (replacing a dead one)."""
        proc = spawn(
            [self._script(service), role],
            env=self.env(service),
            log_path=self.log_dir / f"{service}-{role}.log",
        )
        self.procs[(service, role)] = proc
        return proc

    def start_all(self, *, timeout: float = 60.0) -> None:
        """Start every process and wait until each API answers /healthz."""
        for service in SERVICES:
            for role in ROLES:
                self.start(service, role)
        for service in SERVICES:
            self.wait_api(service, timeout=timeout)

    def wait_api(self, service: str, *, timeout: float = 60.0) -> None:
        """Block until the service's API answers."""

        def up() -> bool:
            try:
                with urllib.request.urlopen(self.url(service) + "/healthz", timeout=1) as r:  # noqa: S310
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_for(
            up,
            timeout=timeout,
            what=f"{service} api",
            proc=self.procs[(service, "api")],
            interval=0.1,
        )

    def kill(self, service: str, role: str) -> None:
        """SIGKILL one process: no cleanup, as a crash would leave things."""
        proc = self.procs.get((service, role))
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self, service: str, role: str) -> None:
        """Stop one process gracefully (SIGTERM, then SIGKILL)."""
        proc = self.procs.get((service, role))
        if proc is not None:
            terminate(proc, timeout=10)

    def stop_all(self) -> None:
        """Stop every process (workers first, so nothing is consumed half-way)."""
        for role in ("worker", "api"):
            for service in SERVICES:
                self.stop(service, role)

    def dead(self) -> list[str]:
        """Processes that exited on their own."""
        return [
            f"{s}-{r} (exit {p.returncode})"
            for (s, r), p in self.procs.items()
            if p.poll() is not None
        ]

    def log_tail(self, service: str, role: str, lines: int = 40) -> str:
        """The end of one process's log, for failure messages."""
        path = self.log_dir / f"{service}-{role}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(
    check: object, *, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> None:
    """Poll ``check()`` until truthy; raise AssertionError naming ``what`` on timeout."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
