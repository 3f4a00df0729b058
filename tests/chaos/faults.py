"""What the chaos harness does to the system while lifecycles run."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cairn_devstack.httpjson import HttpError
from cairn_devstack.procs import ProcessStartError
from cairn_devstack.stack import SERVICES, CairnStack
from cairn_devstack.testing import MailSinkProcess, StripeServer

from tests.chaos.proxy import CuttableProxy

T = TypeVar("T")

# A control call (the stand-ins' fault switches, a process start) that fails is retried
# for this long before the harness gives up on the run: a busy machine can make a single
# call time out, and an injector that dies on the first one stops injecting for the rest
# of the run without anyone noticing.
CONTROL_PATIENCE_S = 120.0


@dataclass
class FaultInjector:
    """At random moments: SIGKILL and restart a service process, cut the broker, make the
    SMTP server answer 4xx or vanish, make a share of Stripe calls time out or 5xx."""

    stack: CairnStack
    proxy: CuttableProxy
    mail: MailSinkProcess
    stripe: StripeServer
    rng: random.Random
    mean_interval_s: float = 1.0
    max_concurrent: int = 3
    counts: Counter[str] = field(default_factory=Counter)
    _busy: set[tuple[str, str]] = field(default_factory=set)

    async def run(self, stopping: asyncio.Event) -> None:
        """Inject faults until ``stopping`` is set, then leave everything healthy."""
        faults = [
            self.kill_process,
            self.kill_process,
            self.kill_process,
            self.broker_outage,
            self.smtp_tempfail,
            self.smtp_outage,
            self.stripe_faults,
        ]
        running: set[asyncio.Task[None]] = set()
        supervisor = asyncio.create_task(self.supervise(stopping))
        cancelled = False
        try:
            while not stopping.is_set():
                try:
                    await asyncio.wait_for(
                        stopping.wait(), self.rng.expovariate(1 / self.mean_interval_s)
                    )
                    break
                except TimeoutError:
                    pass
                if len(running) >= self.max_concurrent:
                    continue  # faults overlap, but never pile up without bound
                task = asyncio.create_task(self._guarded(self.rng.choice(faults)))
                running.add(task)
                task.add_done_callback(running.discard)
        except asyncio.CancelledError:
            cancelled = True  # the run was interrupted: the stack is about to be stopped
            raise
        finally:
            stopping.set()  # ends the supervisor, which otherwise restarts what is stopped
            if cancelled:
                for task in running:
                    task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await supervisor
            if not cancelled:
                await self.heal()

    async def _guarded(self, fault: Callable[[], Awaitable[None]]) -> None:
        """Run one fault; a fault that cannot be carried out is counted, not fatal."""
        try:
            await fault()
        except Exception as exc:
            name = getattr(fault, "__name__", repr(fault))
            self.counts[f"fault not carried out: {name} ({type(exc).__name__})"] += 1
            print(f"chaos: {name} failed: {exc!r}", file=sys.stderr, flush=True)

    async def _control(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a blocking control function, retrying while it times out or errs."""
        deadline = asyncio.get_running_loop().time() + CONTROL_PATIENCE_S
        delay = 0.5
        while True:
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except (OSError, HttpError, ProcessStartError):
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise
                self.counts["control call retried"] += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def supervise(self, stopping: asyncio.Event) -> None:
        """Restart a process that died on its own, as Kubernetes does (restartPolicy)."""
        while not stopping.is_set():
            for (service, role), proc in list(self.stack.procs.items()):
                if proc.poll() is not None and (service, role) not in self._busy:
                    self.counts[f"restarted after exiting: {service} {role}"] += 1
                    await self._control(self.stack.start, service, role)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)

    async def heal(self) -> None:
        """Every process running, broker reachable, no SMTP or Stripe faults."""
        await self.proxy.restore()
        if not self.mail.running:
            await self._control(self.mail.start)
        await self._control(self.mail.clear_faults)
        await self._control(self.stripe.clear_faults)
        for (service, role), proc in list(self.stack.procs.items()):
            if proc.poll() is not None:
                await self._control(self.stack.start, service, role)
                if role == "api":
                    await self._control(self.stack.wait_api, service)

    async def kill_process(self) -> None:
        service, role = self.rng.choice(SERVICES), self.rng.choice(("api", "worker"))
        if (service, role) in self._busy:
            return
        self._busy.add((service, role))
        try:
            await self._kill_restart(service, role)
        finally:
            self._busy.discard((service, role))

    async def _kill_restart(self, service: str, role: str) -> None:
        self.counts[f"SIGKILL {service} {role}"] += 1
        await asyncio.to_thread(self.stack.kill, service, role)
        await asyncio.sleep(self.rng.uniform(0.2, 2.0))
        await self._control(self.stack.start, service, role)
        if role == "api":
            await self._control(self.stack.wait_api, service)

    async def broker_outage(self) -> None:
        if self.proxy.is_cut:
            return
        self.counts["broker outage (connections cut)"] += 1
        await self.proxy.cut()
        await asyncio.sleep(self.rng.uniform(1.0, 4.0))
        await self.proxy.restore()

    async def smtp_tempfail(self) -> None:
        if not self.mail.running or ("mail", "sink") in self._busy:
            return  # it is down (or going down); its fault controls are down with it
        self.counts["SMTP 451 answers"] += 1
        await self._control(self.mail.set_faults, tempfail_next=self.rng.randint(1, 5))

    async def smtp_outage(self) -> None:
        if not self.mail.running or ("mail", "sink") in self._busy:
            return  # one outage at a time: a second one must not stop a sink mid-start
        self._busy.add(("mail", "sink"))
        try:
            self.counts["SMTP server down"] += 1
            await asyncio.to_thread(self.mail.stop)
            await asyncio.sleep(self.rng.uniform(1.0, 5.0))
            await self._control(self.mail.start)
        finally:
            self._busy.discard(("mail", "sink"))

    async def stripe_faults(self) -> None:
        self.counts["Stripe 5xx/timeouts window"] += 1
        try:
            await self._control(
                self.stripe.set_faults,
                error_rate=0.15,
                timeout_rate=0.1,
                timeout_seconds=3,
                seed=self.rng.randrange(10**6),
            )
            await asyncio.sleep(self.rng.uniform(2.0, 6.0))
        finally:
            # Even when switching on failed: the request may have reached the server.
            await self._control(self.stripe.clear_faults)
