"""The whole of Cairn for end-to-end tests: each service's API and worker in its own
process, over the real broker, PostgreSQL (one database per service), localstripe with the
Connect extension and a real SMTP server."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cairn_devstack.broker import start_broker
from cairn_devstack.postgres import create_database, drop_database
from cairn_devstack.procs import free_port, terminate
from cairn_devstack.stack import CairnStack, Infra
from cairn_devstack.testing import MailSinkProcess, StripeServer

from tests.e2e.client import Cairn

JWT_SECRET = "e2e-secret-long-enough-for-hs256-signatures"
WEBHOOK_SECRET = "whsec_e2e_local"
DAY_SECONDS = 6.0


@dataclass
class Env:
    """What an end-to-end test gets."""

    stack: CairnStack
    stripe: StripeServer
    mail: MailSinkProcess
    cairn: Cairn


@pytest.fixture(scope="session")
def e2e_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of its own: the service suites' tests publish on the same topic names and
    join the same consumer groups, and must not feed (or steal from) the running stack.
    ``$KAFKA_BOOTSTRAP_SERVERS`` (an external Kafka) is used as it is."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    port = free_port()
    proc = start_broker(port, log_path=tmp_path_factory.mktemp("e2e-broker") / "tansu.log")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        terminate(proc)


@pytest.fixture(scope="session")
def cairn_stack(
    e2e_bootstrap: str,
    stripe_server: StripeServer,
    mail_sink: MailSinkProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CairnStack]:
    # A suffix per run: two test sessions on one machine never share a database.
    run = uuid.uuid4().hex[:8]
    names = {s: f"cairn_e2e_{s}_{run}" for s in ("contracts", "payments", "notifications")}
    urls = {s: create_database(name) for s, name in names.items()}
    log_dir = Path(tempfile.mkdtemp(prefix="cairn-e2e-logs-"))
    stack = CairnStack(
        Infra(
            kafka_bootstrap=e2e_bootstrap,
            stripe_api_base=stripe_server.api_base,
            stripe_api_key=stripe_server.api_key,
            stripe_webhook_secret=WEBHOOK_SECRET,
            smtp_host="127.0.0.1",
            smtp_port=mail_sink.smtp_port,
            database_urls=urls,
            jwt_secret=JWT_SECRET,
        ),
        # Outside pytest's rotating temp folders, so the logs of a failed run survive.
        log_dir=log_dir,
        # A settings "day" lasts DAY_SECONDS here, so deadlines fire while a test watches.
        # Every process traces into a file of spans (test_tracing.py reads them).
        extra_env={
            "CONTRACTS_DAY_SECONDS": str(DAY_SECONDS),
            "CONTRACTS_TIMER_POLL_INTERVAL_S": "0.5",
            "OTEL_TRACES_EXPORTER": "file",
            "CAIRN_OTEL_TRACES_DIR": str(log_dir / "traces"),
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    )
    stack.migrate()
    stack.start_all()
    stripe_server.register_webhook(stack.url("payments") + "/v1/stripe/webhook", WEBHOOK_SECRET)
    try:
        yield stack
    finally:
        stack.stop_all()
        for name in names.values():
            drop_database(name)


@pytest.fixture
def env(
    cairn_stack: CairnStack, stripe_server: StripeServer, mail_sink: MailSinkProcess
) -> Iterator[Env]:
    dead = cairn_stack.dead()
    assert not dead, f"service processes died: {dead}"
    yield Env(cairn_stack, stripe_server, mail_sink, Cairn(cairn_stack, JWT_SECRET))
    dead = cairn_stack.dead()
    logs = "\n".join(cairn_stack.log_tail(*key.split(" ")[0].split("-")) for key in dead)
    assert not dead, f"service processes died during the test: {dead}\n{logs}"
