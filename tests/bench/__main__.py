"""The benchmark (issue 8): limits first, then Cairn under many concurrent lifecycles.

    python -m tests.bench --lifecycles 2000 --concurrency 16 --duration 45 --instances 1,2

Prints a table, writes ``bench.json`` and ``bench.png`` to ``--out`` (default
``.data/bench``). Not a test: it asserts nothing, it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from cairn_devstack.broker import start_broker
from cairn_devstack.procs import free_port, spawn, terminate
from cairn_devstack.stack import SERVICES
from cairn_devstack.system import LocalSystem, local_system

from tests.bench import limits, report
from tests.bench.load import TimedApi, drive, seed_marketplace
from tests.bench.measure import (
    ProcessSampler,
    cpu_since,
    event_size,
    postgres_cpu,
    read_hops,
    table_counts,
)
from tests.bench.stats import ms, per_second

# Mean size (payload + CloudEvents headers) of Cairn's events, as measured by a bench run
# (674 B); each run records the size it saw (event_bytes_mean), so a drift shows.
EVENT_BYTES = 680

LOADGEN = "load generator (bench)"

BENCH_ENV = {
    # tansu answers a waiting fetch only when fetch_max_wait_ms runs out (DESIGN §9).
    "CAIRN_KAFKA_FETCH_MAX_WAIT_MS": "5",
    "CAIRN_LOG_LEVEL": "WARNING",
}


async def _drained(system: LocalSystem, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    start = time.monotonic()
    while time.monotonic() < deadline:
        counts = await table_counts(system.database_urls)
        if not any(counts.values()):
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - start


async def measure_cairn(
    args: argparse.Namespace, instances: int, lower: float, broker: float
) -> dict[str, Any]:
    workdir = Path(args.out) / f"run-{instances}"
    async with local_system(
        workdir, worker_instances=instances, extra_env=BENCH_ENV, db_prefix="cairn_bench"
    ) as system:
        api = TimedApi({s: system.stack.url(s) for s in SERVICES}, system.jwt_secret)
        try:
            await seed_marketplace(api)
            # Warm-up (not measured): every consumer group has joined and every path is hot.
            warm = report.Progress(f"warm-up x{instances}", args.concurrency, 60)
            await drive(
                api,
                system.stripe,
                lifecycles=args.concurrency,
                concurrency=args.concurrency,
                duration_s=120,
                rate=0,
                first_number=1_000_000,
                on_progress=warm,
            )
            warm.close()
            await _drained(system, 30)
            sampler = ProcessSampler(
                system.processes() | {LOADGEN: os.getpid()}, no_children=frozenset({LOADGEN})
            )
            stopping = asyncio.Event()
            sampling = asyncio.create_task(sampler.run(stopping))
            pg_cpu0 = postgres_cpu()
            machine0 = machine_cpu()
            profilers = start_profilers(system, args, workdir)
            bar = report.Progress(f"load x{instances}", args.lifecycles, args.duration)
            load = await drive(
                api,
                system.stripe,
                lifecycles=args.lifecycles,
                concurrency=args.concurrency,
                duration_s=args.duration,
                rate=args.rate,
                first_number=instances * 100_000,
                on_progress=bar,
            )
            bar.close()
            drain_s = await _drained(system, 60)
            stopping.set()
            await sampling
            pg_cpu = cpu_since(pg_cpu0, postgres_cpu())
            machine_busy = machine_cpu() - machine0
            for prof in profilers:
                await asyncio.to_thread(prof.wait, 60)
            window = load.ended - load.started
            hops = await read_hops(system.database_urls, load.started, load.ended + drain_s + 1)
            size = await event_size(system.database_urls)
        finally:
            await api.close()
    completed = [lc for lc in load.lifecycles if lc.final_state == "released"]
    errors = [lc.error for lc in load.lifecycles if lc.error]
    finished = sorted(load.finished_at[lc.number] for lc in completed)
    # Steady middle: drop the first and last fifth of the window (ramp-up and tail).
    lo, hi = load.started + window / 5, load.ended - window / 5
    steady = sum(1 for t in finished if lo <= t <= hi) / max(hi - lo, 1e-9)
    events = [t for t in hops.events_published if load.started <= t <= load.ended]
    hop_tp = {}
    for name, points in sorted(hops.hops.items()):
        in_window = [t for t, _ in points if load.started <= t <= load.ended]
        per_s = len(in_window) / window
        hop_tp[name] = {
            "per_s": round(per_s, 2),
            "peak_1s": max(per_second(in_window, load.started, load.ended), default=0),
            "ratio_broker": round(per_s / broker, 4),
            "ratio_lower": round(per_s / lower, 4),
        }
    processes = sampler.report(window + drain_s)
    processes["postgres (all backends)"] = {
        "cpu_s": round(pg_cpu, 2),
        "cpu_pct": round(100 * pg_cpu / (window + drain_s), 1),
        "peak_rss_mb": float("nan"),
    }
    ours = sum(v["cpu_s"] for v in processes.values())
    cairn_cpu = ours - processes[LOADGEN]["cpu_s"]
    # A hop still working through a backlog after the load stopped runs at its capacity.
    drain = {}
    for name, points in sorted(hops.hops.items()):
        late = sorted(t for t, _ in points if t > load.ended)
        if len(late) >= 20 and late[-1] > late[0]:
            rate = len(late) / (late[-1] - late[0])
            drain[name] = {
                "events": len(late),
                "seconds": round(late[-1] - late[0], 2),
                "per_s": round(rate, 1),
                "ratio_lower": round(rate / lower, 4),
            }
    processes["(other work on the machine)"] = {
        "cpu_s": round(max(0.0, machine_busy - ours), 2),
        "cpu_pct": round(100 * max(0.0, machine_busy - ours) / (window + drain_s), 1),
        "peak_rss_mb": float("nan"),
    }
    processes["(machine total, all cores)"] = {
        "cpu_s": round(machine_busy, 2),
        "cpu_pct": round(100 * machine_busy / (window + drain_s), 1),
        "peak_rss_mb": float("nan"),
    }
    return {
        "worker_instances": instances,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "seconds": round(window, 2),
        "drain_s": round(drain_s, 2),
        "lifecycles_started": len(load.lifecycles),
        "lifecycles_completed": len(completed),
        "errors": len(errors),
        "error_samples": errors[:5],
        "lifecycles_per_s": round(len(completed) / window, 3),
        "steady_lifecycles_per_s": round(steady, 3),
        "events_per_s": round(len(events) / window, 2),
        "event_bytes_mean": size,
        "http_ms": {k: ms(v) for k, v in sorted(load.by_command().items())},
        "relay_ms": {k: ms(d for _, d in v) for k, v in sorted(hops.relay.items())},
        "hop_ms": {k: ms(d for _, d in v) for k, v in sorted(hops.hops.items())},
        "hop_after_publish_ms": {
            k: ms(d for _, d in v) for k, v in sorted(hops.after_publish.items())
        },
        "end_to_end_ms": ms(d for _, d in hops.end_to_end),
        "end_to_end_stages_ms": {k: ms(v) for k, v in hops.stages.items()},
        "lifecycle_ms": ms(
            load.finished_at[lc.number] - load.started_at[lc.number] for lc in completed
        ),
        "hop_throughput": hop_tp,
        "hop_drain": drain,
        "cairn_cpu_s_per_lifecycle": round(cairn_cpu / max(len(completed), 1), 3),
        "cpu_bound_lifecycles_per_s": round(
            (os.cpu_count() or 1) / (cairn_cpu / max(len(completed), 1)), 2
        )
        if completed and cairn_cpu
        else None,
        "processes": processes,
        "series": {
            "lifecycles_per_s": per_second(finished, load.started, load.ended),
            "events_per_s": per_second(events, load.started, load.ended),
        },
    }


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (all cores, anyone's)."""
    t = psutil.cpu_times()
    return float(
        t.user
        + t.system
        + getattr(t, "nice", 0.0)
        + getattr(t, "irq", 0.0)
        + getattr(t, "softirq", 0.0)
    )


def start_profilers(
    system: LocalSystem, args: argparse.Namespace, workdir: Path
) -> list[subprocess.Popen[bytes]]:
    """py-spy on the processes named by --profile, for the load phase (collapsed stacks)."""
    pids = system.processes()
    out = []
    for label in args.profile:
        out.append(
            spawn(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(pids[label]),
                    "--duration",
                    str(int(args.duration)),
                    "--rate",
                    "100",
                    "--format",
                    "raw",
                    "--output",
                    str(workdir / f"profile-{label}.txt"),
                    *(["--idle"] if args.profile_idle else []),
                ],
                log_path=workdir / f"profile-{label}.log",
            )
        )
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    print("measuring the limits (broker round trip, PostgreSQL commits) ...", flush=True)
    port = free_port()
    proc = await asyncio.to_thread(start_broker, port, log_path=out / "limits-broker.log")
    try:
        broker = await limits.broker_round_trip(
            f"127.0.0.1:{port}", message_size=args.message_bytes, messages=args.raw_messages
        )
    finally:
        await asyncio.to_thread(terminate, proc)
    pg = await limits.postgres_commits(connections=args.pg_connections, seconds=5)
    lower = min(broker["msgs_per_s"], pg["commits_per_s"])
    result: dict[str, Any] = {
        "machine": report.machine(),
        "parameters": vars(args),
        "bench_env": BENCH_ENV,
        "limits": {"broker": broker, "postgres": pg, "lower_per_s": lower},
        "runs": [],
    }
    for n in args.instances:
        result["runs"].append(await measure_cairn(args, n, lower, broker["msgs_per_s"]))
    report.write_json(result, out / "bench.json")
    report.plot(result, out / "bench.png")
    print(report.render(result))
    print(f"\nwrote {out / 'bench.json'} and {out / 'bench.png'}")
    return result


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    p.add_argument("--lifecycles", type=int, default=5000, help="at most this many per run")
    p.add_argument("--concurrency", type=int, default=16, help="lifecycles in flight")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load per run")
    p.add_argument(
        "--rate", type=float, default=0.0, help="lifecycles started per s (0: closed loop)"
    )
    p.add_argument(
        "--instances",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2],
        help="worker instances per service, one run each (e.g. 1,2)",
    )
    p.add_argument("--message-bytes", type=int, default=EVENT_BYTES)
    p.add_argument("--raw-messages", type=int, default=20_000)
    p.add_argument("--pg-connections", type=int, default=4)
    p.add_argument(
        "--profile",
        action="append",
        default=[],
        help="py-spy this process during the load (e.g. notifications-worker)",
    )
    p.add_argument("--profile-idle", action="store_true", help="py-spy --idle (wall clock)")
    p.add_argument("--out", default=".data/bench")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
