"""Percentiles and per-second series, without numpy."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def percentiles(values: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99, max and count of ``values``."""
    s = sorted(values)
    out = {name: percentile(s, q) for name, q in QUANTILES.items()}
    out["max"] = s[-1] if s else math.nan
    out["n"] = float(len(s))
    return out


def per_second(times: Iterable[float], start: float, end: float) -> list[int]:
    """How many of ``times`` fall in each whole second of [start, end)."""
    n = max(1, math.ceil(end - start))
    bins = [0] * n
    for t in times:
        i = int(t - start)
        if 0 <= i < n:
            bins[i] += 1
    return bins


def ms(values: Iterable[float], digits: int = 1) -> dict[str, float]:
    """:func:`percentiles` of durations in seconds, shown in milliseconds (n stays a count)."""
    return {
        k: (int(v) if k == "n" else round(v * 1000, digits)) for k, v in percentiles(values).items()
    }
