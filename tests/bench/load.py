"""Drives many concurrent full lifecycles through the HTTP APIs and times every call.

A lifecycle is the chaos harness's ``customer_release`` scenario (reused, not copied):
card saved, freelancer onboarded, job -> proposal -> contract accepted -> milestone created
-> sent for approval -> approved -> paid -> funded -> complete -> release -> released, with
every email. Only the timing client is new.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from cairn_devstack.sse import aevents
from cairn_devstack.testing import StripeServer

from tests.chaos.api import Api, ScenarioError
from tests.chaos.scenarios import FEE_BPS, MARKETPLACES, Lifecycle, run_lifecycle

KIND = "customer_release"
_ID = re.compile(r"^[0-9a-zA-Z_-]{16,}$")


def command_name(method: str, service: str, path: str) -> str:
    """``POST /v1/milestones/{id}/approve`` -> ``approve``; GETs keep their resource."""
    parts = [p for p in path.split("/") if p and p != "v1"]
    named = [p for p in parts if not _ID.match(p)]
    last = named[-1] if named else service
    if method == "GET":
        return f"GET {named[0] if named else service}"
    if last == "milestones" and method == "POST":
        return "create milestone"
    return last


class TimedApi(Api):
    """The chaos client, recording (command, seconds, finished at) for every call, and
    following live updates instead of polling."""

    def __init__(self, urls: dict[str, str], jwt_secret: str) -> None:
        super().__init__(urls, jwt_secret)
        self.calls: list[tuple[str, float, float]] = []

    async def call(
        self, token: str, method: str, service: str, path: str, body: Any = None, **kw: Any
    ) -> Any:
        t = time.perf_counter()
        try:
            return await super().call(token, method, service, path, body, **kw)
        finally:
            now = time.perf_counter()
            self.calls.append((command_name(method, service, path), now - t, time.time()))

    async def wait_for_milestone(
        self,
        token: str,
        contract_id: str,
        milestone_id: str,
        states: tuple[str, ...],
        *,
        timeout: float = 240.0,
    ) -> dict[str, Any]:
        """As a front end would: follow the contract's live updates (Server-Sent Events)
        until the milestone is in one of ``states`` (the snapshot may already show it)."""
        url = f"{self.urls['contracts']}/v1/contracts/{contract_id}/events"
        headers = {"authorization": f"Bearer {token}"}
        async with (
            asyncio.timeout(timeout),
            self.http.stream("GET", url, headers=headers, timeout=httpx.Timeout(None)) as r,
        ):
            if r.status_code != 200:
                await r.aread()
                raise ScenarioError(f"GET {url} -> {r.status_code}: {r.text}")
            async for event in aevents(r.aiter_lines()):
                data = event.json()
                shown = data.get("milestones") or [data.get("milestone") or {}]
                for milestone in shown:
                    if milestone.get("id") == milestone_id and milestone["state"] in states:
                        found: dict[str, Any] = milestone
                        return found
        raise ScenarioError(f"the live updates of {contract_id} ended early")


@dataclass
class LoadResult:
    """What the load phase did, in wall-clock (time.time()) terms."""

    started: float
    ended: float
    lifecycles: list[Lifecycle] = field(default_factory=list)
    finished_at: dict[int, float] = field(default_factory=dict)
    started_at: dict[int, float] = field(default_factory=dict)
    calls: list[tuple[str, float, float]] = field(default_factory=list)

    def by_command(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = defaultdict(list)
        for name, seconds, _ in self.calls:
            out[name].append(seconds)
        return dict(out)


async def seed_marketplace(api: Api) -> None:
    """The customer-mode marketplace the lifecycles run in (branded, as production)."""
    mk = "chaos-customer"
    await api.call(
        api.token("operator", "bench-operator", mk),
        "PUT",
        "contracts",
        f"/v1/marketplaces/{mk}/settings",
        {
            "currency": "EUR",
            "platform_fee_bps": FEE_BPS,
            "branding": {
                "display_name": "Bench",
                "from_address": "hello@bench.test",
                "support_address": "help@bench.test",
            },
        }
        | MARKETPLACES[mk],
    )


async def drive(
    api: TimedApi,
    stripe: StripeServer,
    *,
    lifecycles: int,
    concurrency: int,
    duration_s: float,
    rate: float,
    first_number: int,
    on_progress: Callable[[int, int], None],
) -> LoadResult:
    """Run lifecycles until ``lifecycles`` finished or ``duration_s`` passed (whichever is
    first); closed loop with ``concurrency`` in flight, or open loop at ``rate``/s (still
    at most ``concurrency`` in flight) when ``rate`` > 0."""
    rng = random.Random(first_number)
    result = LoadResult(started=time.time(), ended=0.0)
    api.calls = result.calls
    gate = asyncio.Semaphore(concurrency)
    stop_at = time.monotonic() + duration_s
    done = 0

    async def one(n: int) -> None:
        nonlocal done
        lc = Lifecycle(number=n, kind=KIND, amount=rng.randrange(1_000, 250_000))
        result.lifecycles.append(lc)
        result.started_at[n] = time.time()
        try:
            await run_lifecycle(api, stripe, lc)
        finally:
            gate.release()
        result.finished_at[n] = time.time()
        done += 1
        on_progress(done, lifecycles)

    tasks: list[asyncio.Task[None]] = []
    n = first_number
    launched = 0
    while launched < lifecycles and time.monotonic() < stop_at:
        await gate.acquire()
        if time.monotonic() >= stop_at:
            gate.release()
            break
        tasks.append(asyncio.create_task(one(n)))
        n += 1
        launched += 1
        if rate > 0:
            await asyncio.sleep(1.0 / rate)
    await asyncio.gather(*tasks)
    result.ended = time.time()
    return result
