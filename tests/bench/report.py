"""The benchmark's outputs: a terminal table, a progress bar, the JSON file and the plot."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil


class Progress:
    """A one-line progress bar on the terminal (no dependency)."""

    def __init__(self, label: str, total: int, seconds: float) -> None:
        self.label, self.total, self.seconds = label, total, seconds
        self.start = time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int, _total: int) -> None:
        elapsed = time.monotonic() - self.start
        if elapsed - self.shown < 0.5 and done < self.total:
            return
        self.shown = elapsed
        frac = min(1.0, max(done / max(self.total, 1), elapsed / max(self.seconds, 1e-9)))
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        rate = done / elapsed if elapsed else 0.0
        sys.stdout.write(
            f"\r  {self.label} [{bar}] {done} lifecycles, {elapsed:5.1f}s, {rate:5.2f}/s "
        )
        sys.stdout.flush()

    def close(self) -> None:
        sys.stdout.write("\n")
        sys.stdout.flush()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "git_commit": commit,
    }


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = [_row(headers, widths), _row(["-" * w for w in widths], widths)]
    lines += [_row([str(c) for c in r], widths) for r in rows]
    return "\n".join(lines)


def _lat(d: dict[str, float]) -> list[str]:
    return [f"{d['p50']:.1f}", f"{d['p95']:.1f}", f"{d['p99']:.1f}", str(d["n"])]


def render(result: dict[str, Any]) -> str:
    """The terminal summary of a whole run."""
    lim = result["limits"]
    out = [
        "",
        "LIMITS (same run)",
        f"  broker consume->produce: {lim['broker']['msgs_per_s']:.0f} msg/s at "
        f"{lim['broker']['message_bytes']} B; hop latency p50 "
        f"{lim['broker']['hop_latency_ms']['p50']:.1f} ms, p99 "
        f"{lim['broker']['hop_latency_ms']['p99']:.1f} ms "
        f"(fetch_max_wait_ms={lim['broker']['fetch_max_wait_ms']})",
        f"  postgres small commits: {lim['postgres']['commits_per_s']:.0f} commits/s over "
        f"{lim['postgres']['connections']} connections; p50 "
        f"{lim['postgres']['commit_latency_ms']['p50']:.2f} ms",
        f"  lower limit: {lim['lower_per_s']:.0f}/s -> hop target (40%): "
        f"{0.4 * lim['lower_per_s']:.0f} events/s",
    ]
    for run in result["runs"]:
        n = run["worker_instances"]
        out += [
            "",
            f"CAIRN, {n} worker instance(s) per service: {run['lifecycles_completed']} "
            f"lifecycles in {run['seconds']:.1f} s "
            f"(concurrency {run['concurrency']}, rate {run['rate'] or 'closed loop'})",
            f"  throughput: {run['lifecycles_per_s']:.2f} lifecycles/s, "
            f"{run['events_per_s']:.1f} events/s published "
            f"(steady middle: {run['steady_lifecycles_per_s']:.2f} lifecycles/s); "
            f"errors: {run['errors']}",
            "",
            table(
                ["latency (ms)", "p50", "p95", "p99", "n"],
                [[f"HTTP {k}", *_lat(v)] for k, v in run["http_ms"].items()]
                + [[f"relay {k}", *_lat(v)] for k, v in run["relay_ms"].items()]
                + [[f"hop {k}", *_lat(v)] for k, v in run["hop_ms"].items()]
                + [
                    [f"  of which after publish {k}", *_lat(v)]
                    for k, v in run["hop_after_publish_ms"].items()
                ]
                + [["END TO END release -> paid email", *_lat(run["end_to_end_ms"])]]
                + [[f"  {k}", *_lat(v)] for k, v in run.get("end_to_end_stages_ms", {}).items()]
                + [
                    [
                        "lifecycle (client, incl. waiting for live updates)",
                        *_lat(run["lifecycle_ms"]),
                    ]
                ],
            ),
            "",
            table(
                ["hop throughput", "events/s", "peak 1s", "/broker", "/lower limit"],
                [
                    [
                        k,
                        f"{v['per_s']:.1f}",
                        str(v["peak_1s"]),
                        f"{100 * v['ratio_broker']:.2f}%",
                        f"{100 * v['ratio_lower']:.2f}%",
                    ]
                    for k, v in run["hop_throughput"].items()
                ],
            ),
            "",
            table(
                ["process", "CPU s", "CPU %", "peak RSS MB"],
                [
                    [k, f"{v['cpu_s']:.1f}", f"{v['cpu_pct']:.0f}", f"{v['peak_rss_mb']:.0f}"]
                    for k, v in run["processes"].items()
                ],
            ),
        ]
        out += [
            "",
            f"  Cairn CPU per lifecycle (services, broker, stand-ins, PostgreSQL): "
            f"{run['cairn_cpu_s_per_lifecycle']:.2f} s -> at most "
            f"{run['cpu_bound_lifecycles_per_s']} lifecycles/s on all "
            f"{result['machine']['cores']} cores",
        ]
        if run.get("hop_drain"):
            out += [
                "",
                table(
                    ["hop draining its backlog", "events", "s", "events/s", "/lower limit"],
                    [
                        [
                            k,
                            str(v["events"]),
                            f"{v['seconds']:.2f}",
                            f"{v['per_s']:.0f}",
                            f"{100 * v['ratio_lower']:.2f}%",
                        ]
                        for k, v in run["hop_drain"].items()
                    ],
                ),
            ]
    if len(result["runs"]) > 1:
        base = result["runs"][0]
        out += ["", "SCALING (worker instances per service)"]
        for run in result["runs"]:
            ratio = run["lifecycles_per_s"] / base["lifecycles_per_s"]
            out.append(
                f"  {run['worker_instances']}: {run['lifecycles_per_s']:.2f} lifecycles/s, "
                f"{run['events_per_s']:.1f} events/s (x{ratio:.2f}), e2e p99 "
                f"{run['end_to_end_ms']['p99']:.0f} ms"
            )
    return "\n".join(out)


def _finite(value: Any) -> Any:
    """NaN (no sample, not measured) becomes null, so the file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(result), indent=2, default=str, allow_nan=False))


def plot(result: dict[str, Any], path: Path) -> None:
    """Latency percentiles (per command, hop, end to end) and throughput over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    fig, axes = plt.subplots(2, 1, figsize=(12, 11), gridspec_kw={"height_ratios": [3, 2]})
    ax = axes[0]

    # Every run's p50 / p95 / p99 side by side, per command, hop and end to end.
    def rows(run: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
        return (
            [(f"HTTP {k}", v) for k, v in run["http_ms"].items()]
            + [(f"relay {k}", v) for k, v in run["relay_ms"].items()]
            + [(f"hop {k}", v) for k, v in run["hop_ms"].items()]
            + [("release -> paid email", run["end_to_end_ms"])]
        )

    names = [name for name, _ in rows(runs[0])]
    y = range(len(names))
    bars = [(r, q) for r in runs for q in ("p50", "p95", "p99")]
    height = 0.8 / len(bars)
    colours = {"p50": "#4c72b0", "p95": "#dd8452", "p99": "#c44e52"}
    for i, (r, q) in enumerate(bars):
        values = dict(rows(r))
        ax.barh(
            [j + (i - (len(bars) - 1) / 2) * height for j in y],
            [values.get(n, {}).get(q) or 0 for n in names],
            height=height,
            label=f"{q}, {r['worker_instances']} instance(s)",
            color=colours[q],
            alpha=1.0 if r is runs[0] else 0.45,
        )
    ax.set_yticks(list(y))
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds (log)")
    ax.set_title(
        "Latency percentiles; "
        + ", ".join(
            f"{r['worker_instances']} instance(s): {r['lifecycles_per_s']:.2f} lifecycles/s"
            for r in runs
        )
    )
    ax.legend(fontsize=7)
    ax2 = axes[1]
    for r in runs:
        ts = r["series"]
        ax2.plot(ts["events_per_s"], label=f"events/s, {r['worker_instances']} instance(s)")
        ax2.plot(
            [10 * v for v in ts["lifecycles_per_s"]],
            linestyle="--",
            label=f"lifecycles/s x10, {r['worker_instances']} instance(s)",
        )
    ax2.set_xlabel("seconds into the measured load")
    ax2.set_ylabel("per second")
    ax2.set_title("Throughput over time")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
