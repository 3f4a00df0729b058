"""The whole local system as in production, for harnesses that drive it from outside (the
benchmark): a broker, localstripe with Cairn's extension, the SMTP sink, one fresh
PostgreSQL database per service, and each service's API and worker(s) as separate processes.

    async with local_system(workdir, worker_instances=2) as system:
        system.stack.url("contracts") ...

Extra workers (``worker_instances`` > 1) join the same consumer groups as the first; they
are all started before the context yields, so no group rebalances during a measurement.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cairn_schemas import topics

from cairn_devstack.broker import create_topics, resolve_tansu_bin, wait_for_kafka
from cairn_devstack.postgres import acreate_database, drop_database
from cairn_devstack.procs import free_port, spawn, terminate
from cairn_devstack.stack import SERVICES, CairnStack, Infra
from cairn_devstack.testing import (
    MailSinkProcess,
    StripeServer,
    start_mail_sink,
    start_stripe_server,
)

__all__ = ["LocalSystem", "local_system"]

JWT_SECRET = "local-system-secret-long-enough-for-hs256"
WEBHOOK_SECRET = "whsec_local_system"


@dataclass
class LocalSystem:
    """What :func:`local_system` started; ``processes`` names every OS process of it."""

    stack: CairnStack
    stripe: StripeServer
    mail: MailSinkProcess
    broker: subprocess.Popen[bytes]
    bootstrap: str
    database_urls: dict[str, str]
    jwt_secret: str
    extra_workers: dict[str, list[subprocess.Popen[bytes]]] = field(default_factory=dict)

    def processes(self) -> dict[str, int]:
        """label -> pid of every process the system runs (services, broker, stand-ins)."""
        out = {f"{s}-{r}": p.pid for (s, r), p in self.stack.procs.items()}
        for service, procs in self.extra_workers.items():
            for n, proc in enumerate(procs, start=2):
                out[f"{service}-worker{n}"] = proc.pid
        out["broker"] = self.broker.pid
        out["localstripe"] = self.stripe.proc.pid
        if self.mail.proc is not None:
            out["mailsink"] = self.mail.proc.pid
        return out


def _script(service: str) -> str:
    exe = Path(sys.executable).parent / f"cairn-{service}"
    return str(exe) if exe.exists() else (shutil.which(f"cairn-{service}") or str(exe))


@asynccontextmanager
async def local_system(
    workdir: Path,
    *,
    worker_instances: int = 1,
    extra_env: dict[str, str] | None = None,
    db_prefix: str = "cairn_sys",
    partitions: int = 3,
) -> AsyncIterator[LocalSystem]:
    """Start everything, yield it, then stop every process and drop the databases."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    db_names = {s: f"{db_prefix}_{s}_{run_id}" for s in SERVICES}
    started: list[subprocess.Popen[bytes]] = []
    stack: CairnStack | None = None
    mail: MailSinkProcess | None = None
    system: LocalSystem | None = None
    try:
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        broker = spawn(
            [
                resolve_tansu_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            log_path=workdir / "broker.log",
        )
        started.append(broker)
        bootstrap = f"127.0.0.1:{port}"
        await wait_for_kafka(bootstrap, wait_seconds=30)
        await create_topics(
            bootstrap,
            {t: partitions for t in topics.ALL} | {topics.dead_letter(s): 1 for s in SERVICES},
            compacted=set(topics.COMPACTED),
        )
        stripe = await asyncio.to_thread(start_stripe_server, workdir / "stripe")
        started.append(stripe.proc)
        mail = await asyncio.to_thread(start_mail_sink, workdir / "mail")
        dbs = {s: await acreate_database(name) for s, name in db_names.items()}
        stack = CairnStack(
            Infra(
                kafka_bootstrap=bootstrap,
                stripe_api_base=stripe.api_base,
                stripe_api_key=stripe.api_key,
                stripe_webhook_secret=WEBHOOK_SECRET,
                smtp_host="127.0.0.1",
                smtp_port=mail.smtp_port,
                database_urls=dbs,
                jwt_secret=JWT_SECRET,
            ),
            log_dir=workdir / "logs",
            extra_env=dict(extra_env or {}),
        )
        await asyncio.to_thread(stack.migrate)
        await asyncio.to_thread(stack.start_all)
        system = LocalSystem(stack, stripe, mail, broker, bootstrap, dbs, JWT_SECRET)
        for service in SERVICES:
            for n in range(2, worker_instances + 1):
                system.extra_workers.setdefault(service, []).append(
                    spawn(
                        [_script(service), "worker"],
                        env=stack.env(service),
                        log_path=workdir / "logs" / f"{service}-worker{n}.log",
                    )
                )
        await asyncio.to_thread(
            stripe.register_webhook, stack.url("payments") + "/v1/stripe/webhook", WEBHOOK_SECRET
        )
        yield system
    finally:
        if system is not None:
            for procs in system.extra_workers.values():
                for proc in procs:
                    await asyncio.to_thread(terminate, proc)
        if stack is not None:
            await asyncio.to_thread(stack.stop_all)
        for proc in reversed(started):
            await asyncio.to_thread(terminate, proc)
        if mail is not None:
            await asyncio.to_thread(mail.stop)
        for name in db_names.values():
            await asyncio.to_thread(drop_database, name)
