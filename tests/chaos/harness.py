"""The chaos run: many lifecycles across several marketplaces with mixed settings, run
concurrently while faults are injected; then drain, check and print a report.

    python -m tests.chaos --lifecycles 1000 --seed 1      (make chaos LIFECYCLES=… SEED=…)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn_devstack.broker import create_topics, resolve_tansu_bin, wait_for_kafka
from cairn_devstack.postgres import acreate_database, drop_database
from cairn_devstack.procs import free_port, spawn, terminate
from cairn_devstack.stack import SERVICES, CairnStack, Infra
from cairn_devstack.testing import start_mail_sink, start_stripe_server
from cairn_schemas import topics
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.chaos.api import Api
from tests.chaos.checks import (
    Check,
    duplicate_emails,
    handled_types,
    outbox_delivery,
    run_checks,
)
from tests.chaos.faults import FaultInjector
from tests.chaos.proxy import CuttableProxy
from tests.chaos.scenarios import FEE_BPS, MARKETPLACES, Lifecycle, plan, run_lifecycle

JWT_SECRET = "chaos-secret-long-enough-for-hs256-signatures"
WEBHOOK_SECRET = "whsec_chaos"


@dataclass
class Report:
    """What a chaos run did and found."""

    lifecycles: int
    seed: int
    seconds: float
    faults: dict[str, int]
    checks: list[Check]
    emails_caught: int
    duplicate_emails: int
    api_retries: int
    fault_interval_s: float = 1.0
    lifecycle_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def violations(self) -> int:
        return sum(len(c.violations) for c in self.checks)

    def render(self) -> str:
        width = max(len(c.name) for c in self.checks)
        lines = [
            f"chaos run: {self.lifecycles} lifecycles, seed {self.seed}, {self.seconds:.0f} s",
            "",
            "faults injected:",
            *(f"  {n:>5}  {name}" for name, n in sorted(self.faults.items())),
            f"  {self.api_retries:>5}  HTTP calls retried by clients",
            "",
            f"{'check':<{width}}  {'checked':>8}  {'violations':>10}",
            f"{'-' * width}  {'-' * 8}  {'-' * 10}",
            *(f"{c.name:<{width}}  {c.checked:>8}  {len(c.violations):>10}" for c in self.checks),
            "",
            f"emails caught: {self.emails_caught}; duplicates (same Message-ID): "
            f"{self.duplicate_emails}",
            "lifecycles by kind: "
            + ", ".join(f"{k} {n}" for k, n in sorted(self.lifecycle_kinds.items())),
        ]
        for c in self.checks:
            for v in c.violations[:20]:
                lines.append(f"VIOLATION [{c.name}] {v}")
            if len(c.violations) > 20:
                lines.append(f"... and {len(c.violations) - 20} more in [{c.name}]")
        lines.append("")
        lines.append(
            "RESULT: "
            + (
                "PASS, zero violations"
                if not self.violations
                else f"FAIL, {self.violations} violations"
            )
        )
        return "\n".join(lines)


async def _drained(dbs: dict[str, str]) -> bool:
    """Nothing left to publish, consume, charge or send."""
    _, missing = await outbox_delivery(dbs, handled_types())
    if missing:
        return False
    for service, url in dbs.items():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                pending = (
                    await conn.execute(
                        text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                    )
                ).scalar_one()
                if service == "notifications":
                    pending += (
                        await conn.execute(
                            text(
                                "SELECT count(*) FROM email_deliveries WHERE status IN "
                                "('pending', 'sending')"
                            )
                        )
                    ).scalar_one()
                if service == "payments":
                    pending += (
                        await conn.execute(
                            text(
                                "SELECT count(*) FROM escrows WHERE state IN "
                                "('funding', 'reconciling')"
                            )
                        )
                    ).scalar_one()
        finally:
            await engine.dispose()
        if pending:
            return False
    return True


async def run(
    lifecycles: int,
    seed: int,
    *,
    concurrency: int = 12,
    workdir: Path,
    faults: bool = True,
    fault_interval_s: float = 1.0,
    keep_on_failure: bool = False,
    log_level: str = "WARNING",
) -> Report:
    """Run the whole experiment and return its report. With ``keep_on_failure``, a run
    that fails (a violation or an error) keeps its databases for the post-mortem."""
    rng = random.Random(seed)
    started = time.monotonic()
    succeeded = False
    workdir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    db_names = {s: f"cairn_chaos_{s}_{run_id}" for s in SERVICES}
    procs: list[Any] = []
    stack: CairnStack | None = None
    api: Api | None = None
    fault_task: asyncio.Task[None] | None = None
    try:
        broker_port, proxy_port = free_port(), free_port()
        procs.append(
            spawn(
                [
                    resolve_tansu_bin(),
                    "broker",
                    "--listener-url",
                    f"tcp://127.0.0.1:{broker_port}",
                    "--advertised-listener-url",
                    f"tcp://127.0.0.1:{proxy_port}",
                    "--storage-engine",
                    "memory://tansu/",
                ],
                log_path=workdir / "broker.log",
            )
        )
        proxy = CuttableProxy(proxy_port, broker_port)
        await proxy.start()
        bootstrap = f"127.0.0.1:{proxy_port}"
        await wait_for_kafka(bootstrap, wait_seconds=30)
        await create_topics(
            bootstrap,
            {t: 3 for t in topics.ALL} | {topics.dead_letter(s): 1 for s in SERVICES},
            compacted=set(topics.COMPACTED),
        )
        stripe = await asyncio.to_thread(start_stripe_server, workdir / "stripe")
        procs.append(stripe.proc)
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
            extra_env={
                "PAYMENTS_STRIPE_REQUEST_TIMEOUT_S": "2",
                "PAYMENTS_RECONCILE_INTERVAL_S": "1",
                "PAYMENTS_ACCOUNT_RECHECK_INTERVAL_S": "5",
                "PAYMENTS_OWED_CALL_GRACE_S": "10",
                # The faults last seconds, not the minutes production's backoff is sized
                # for; scaled down the mail drains in seconds once the faults stop (the
                # retry window, 1 h as in `make run`, outlasts any run).
                "NOTIFICATIONS_DELIVERY_BACKOFF_INITIAL_S": "1",
                "NOTIFICATIONS_DELIVERY_BACKOFF_MAX_S": "10",
                "CAIRN_LOG_LEVEL": log_level,
            },
        )
        await asyncio.to_thread(stack.migrate)
        await asyncio.to_thread(stack.start_all)
        await asyncio.to_thread(
            stripe.register_webhook, stack.url("payments") + "/v1/stripe/webhook", WEBHOOK_SECRET
        )
        api = Api({s: stack.url(s) for s in SERVICES}, JWT_SECRET)
        for mk, settings in MARKETPLACES.items():
            await api.call(
                api.token("operator", "chaos-operator", mk),
                "PUT",
                "contracts",
                f"/v1/marketplaces/{mk}/settings",
                {
                    "currency": "EUR",
                    "platform_fee_bps": FEE_BPS,
                    "branding": {
                        "display_name": mk.title(),
                        "from_address": f"hello@{mk}.test",
                        "support_address": f"help@{mk}.test",
                    },
                }
                | settings,
            )

        todo = plan(lifecycles, rng)
        stopping = asyncio.Event()
        injector = FaultInjector(
            stack, proxy, mail, stripe, random.Random(seed + 1), mean_interval_s=fault_interval_s
        )
        if faults:
            fault_task = asyncio.create_task(injector.run(stopping))
        gate = asyncio.Semaphore(concurrency)
        done = 0

        async def one(lc: Lifecycle) -> None:
            nonlocal done
            async with gate:
                await run_lifecycle(api, stripe, lc)
            done += 1
            if done % 25 == 0 or done == len(todo):
                print(f"  {done}/{len(todo)} lifecycles finished", flush=True)

        await asyncio.gather(*(one(lc) for lc in todo))
        stopping.set()
        if fault_task is not None:
            await fault_task
        await FaultInjector(stack, proxy, mail, stripe, rng).heal()
        drain_started = time.monotonic()
        while not await _drained(dbs) and time.monotonic() < drain_started + 300:
            await asyncio.sleep(1)
        print(f"  drained in {time.monotonic() - drain_started:.0f} s", flush=True)
        checks = await run_checks(todo, dbs, stripe, mail)
        caught, dupes = await duplicate_emails(mail)
        kinds: dict[str, int] = {}
        for lc in todo:
            kinds[lc.kind] = kinds.get(lc.kind, 0) + 1
        report = Report(
            lifecycles=lifecycles,
            seed=seed,
            seconds=time.monotonic() - started,
            faults=dict(injector.counts),
            checks=checks,
            emails_caught=caught,
            duplicate_emails=dupes,
            api_retries=api.retries,
            lifecycle_kinds=kinds,
            fault_interval_s=fault_interval_s,
        )
        succeeded = report.violations == 0
        return report
    finally:
        if fault_task is not None and not fault_task.done():
            # Interrupted mid-run: stop the injector first, or its supervisor restarts the
            # processes stop_all is stopping (they outlived the run).
            fault_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fault_task
        if api is not None:
            await api.close()
        if stack is not None:
            await asyncio.to_thread(stack.stop_all)
        for proc in reversed(procs):
            await asyncio.to_thread(terminate, proc)
        if "mail" in locals():
            await asyncio.to_thread(mail.stop)
        if keep_on_failure and not succeeded:
            print(f"  kept for the post-mortem: databases {sorted(db_names.values())}", flush=True)
        else:
            for name in db_names.values():
                await asyncio.to_thread(drop_database, name)
