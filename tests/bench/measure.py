"""What the benchmark reads besides the HTTP timings: CPU and memory of every process
(sampled with psutil) and the per-hop timings the services' own tables record."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped,unused-ignore]
import psutil


@dataclass
class ProcessSampler:
    """Samples CPU seconds and RSS of named pids (children included) every ``interval``."""

    pids: dict[str, int]
    interval: float = 0.5
    # labels whose child processes are not theirs to count (the bench spawned the system)
    no_children: frozenset[str] = frozenset()
    peak_rss: dict[str, int] = field(default_factory=dict)
    cpu_start: dict[str, float] = field(default_factory=dict)
    cpu_end: dict[str, float] = field(default_factory=dict)
    _procs: dict[str, list[psutil.Process]] = field(default_factory=dict)

    def _tree(self, label: str) -> list[psutil.Process]:
        if label not in self._procs:
            try:
                root = psutil.Process(self.pids[label])
                kids = [] if label in self.no_children else root.children(recursive=True)
                self._procs[label] = [root, *kids]
            except psutil.NoSuchProcess:
                self._procs[label] = []
        return self._procs[label]

    def _cpu_rss(self, label: str) -> tuple[float, int]:
        cpu, rss = 0.0, 0
        for p in self._tree(label):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                cpu += t.user + t.system
                rss += p.memory_info().rss
        return cpu, rss

    def sample(self) -> dict[str, tuple[float, int]]:
        out = {label: self._cpu_rss(label) for label in self.pids}
        for label, (_, rss) in out.items():
            self.peak_rss[label] = max(self.peak_rss.get(label, 0), rss)
        return out

    async def run(self, stopping: asyncio.Event) -> None:
        first = self.sample()
        self.cpu_start = {k: v[0] for k, v in first.items()}
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self.interval)
            last = self.sample()
        self.cpu_end = {k: v[0] for k, v in last.items()}

    def report(self, seconds: float) -> dict[str, dict[str, float]]:
        return {
            label: {
                "cpu_s": round(self.cpu_end.get(label, 0) - self.cpu_start.get(label, 0), 2),
                "cpu_pct": round(
                    100 * (self.cpu_end.get(label, 0) - self.cpu_start.get(label, 0)) / seconds, 1
                ),
                "peak_rss_mb": round(self.peak_rss.get(label, 0) / 2**20, 1),
            }
            for label in self.pids
        }


def postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL server process on the machine, by pid (the
    server is shared by every session on the machine)."""
    out: dict[int, float] = {}
    for p in psutil.process_iter(["name"]):
        if (p.info.get("name") or "").startswith("postgres"):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
    return out


def cpu_since(start: dict[int, float], end: dict[int, float]) -> float:
    """CPU used between two :func:`postgres_cpu` samples by the processes alive at the end
    (a backend that exited in between is not counted: a slight undercount)."""
    return sum(cpu - start.get(pid, 0.0) for pid, cpu in end.items())


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg", "postgresql")


def _ts(value: datetime) -> float:
    return value.timestamp()


@dataclass
class Hops:
    """Per-hop (producer outbox write -> consumer done) timings from the services' tables."""

    # (producer service -> consumer group) -> [(processed at, seconds from outbox write)]
    hops: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    # relay: outbox write -> published (per producing service)
    relay: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    # milestone id -> seconds from the release command to the freelancer's paid email
    end_to_end: list[tuple[float, float]] = field(default_factory=list)
    # the consumer's share of a hop: published -> consumer done
    after_publish: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    events_published: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


async def read_hops(database_urls: dict[str, str], since: float, until: float) -> Hops:
    """Every event written in [since, until] and what became of it."""
    outbox: dict[str, tuple[str, float, float | None]] = {}
    out = Hops()
    conns = {s: await asyncpg.connect(_plain(u)) for s, u in database_urls.items()}
    try:
        for service, conn in conns.items():
            rows = await conn.fetch(
                "SELECT event_id, event_type, created_at, published_at FROM outbox"
            )
            relay: list[tuple[float, float]] = []
            for r in rows:
                created = _ts(r["created_at"])
                pub = _ts(r["published_at"]) if r["published_at"] is not None else None
                outbox[r["event_id"]] = (service, created, pub)
                if r["published_at"] is not None and since <= created <= until:
                    published = _ts(r["published_at"])
                    relay.append((published, published - created))
                    out.events_published.append(published)
            out.relay[service] = relay
        hops: dict[str, list[tuple[float, float]]] = defaultdict(list)
        after: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for conn in conns.values():
            for r in await conn.fetch("SELECT consumer, event_id, processed_at FROM inbox"):
                found = outbox.get(r["event_id"])
                if found is None or not since <= found[1] <= until:
                    continue
                done = _ts(r["processed_at"])
                hops[f"{found[0]} -> {r['consumer']}"].append((done, done - found[1]))
                if found[2] is not None:
                    after[f"{found[0]} -> {r['consumer']}"].append((done, done - found[2]))
        out.hops = dict(hops)
        out.after_publish = dict(after)
        releases = {
            r["milestone_id"]: _ts(r["at"])
            for r in await conns["contracts"].fetch(
                "SELECT milestone_id, at FROM milestone_history WHERE command = 'release'"
            )
        }
        paid: dict[str, tuple[float, float]] = {}
        for r in await conns["notifications"].fetch(
            "SELECT milestone_id, created_at, delivered_at FROM email_deliveries "
            "WHERE recipient_role = 'freelancer' AND delivered_at IS NOT NULL "
            "AND source_event_type LIKE '%released'"
        ):
            at = releases.get(r["milestone_id"])
            if at is not None and since <= at <= until:
                done = _ts(r["delivered_at"])
                first = paid.get(r["milestone_id"])
                if first is None or done < first[0]:
                    paid[r["milestone_id"]] = (done, _ts(r["created_at"]))
        out.end_to_end = [(done, done - releases[m]) for m, (done, _) in paid.items()]
        # Where the end-to-end time goes: release -> payments wrote payment.released
        # (contracts relay, payments consumer, the Stripe transfer) -> the email was queued
        # (payments relay, notifications consumer) -> delivered (sender, SMTP).
        money = {
            r["m"]: _ts(r["created_at"])
            for r in await conns["payments"].fetch(
                "SELECT payload::json->>'milestone_id' AS m, created_at FROM outbox "
                "WHERE event_type = 'cairn.payment.released'"
            )
        }
        for m, (done, queued) in paid.items():
            if m in money:
                out.stages["release -> payment.released written"].append(money[m] - releases[m])
                out.stages["-> freelancer email queued"].append(queued - money[m])
                out.stages["-> email delivered (SMTP)"].append(done - queued)
    finally:
        for conn in conns.values():
            await conn.close()
    return out


async def event_size(database_urls: dict[str, str]) -> int:
    """Mean size (payload + headers) of the events the services published."""
    total, n = 0, 0
    for url in database_urls.values():
        conn = await asyncpg.connect(_plain(url))
        try:
            row = await conn.fetchrow(
                "SELECT coalesce(sum(length(payload) + length(headers)), 0) AS b, count(*) AS n "
                "FROM outbox"
            )
            total += int(row["b"])
            n += int(row["n"])
        finally:
            await conn.close()
    return total // n if n else 700


async def table_counts(database_urls: dict[str, str]) -> dict[str, Any]:
    """Rows in flight after the run (a healthy run leaves none)."""
    out: dict[str, Any] = {}
    for service, url in database_urls.items():
        conn = await asyncpg.connect(_plain(url))
        try:
            out[f"{service}.outbox_unpublished"] = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            if service == "notifications":
                out["notifications.emails_pending"] = await conn.fetchval(
                    "SELECT count(*) FROM email_deliveries WHERE status <> 'delivered'"
                )
        finally:
            await conn.close()
    return out


def now() -> float:
    return time.time()
