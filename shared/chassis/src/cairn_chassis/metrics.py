"""Which process exports which metrics.

Every metric is declared once at import, and an API process imports the modules that
declare the workers' ones too (the outbox, the consumers). Exported as they are, an API
would show a worker's counters forever at zero, and a sum or an alert over them would
count each API pod as a silent worker. :func:`worker_only` marks them; an API's
``/metrics`` (:func:`api_metrics`) leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric

_WORKER_ONLY: set[str] = set()


def worker_only(*metrics: MetricWrapperBase) -> None:
    """Mark metrics that only a worker updates (consumers, relays, background loops)."""
    for metric in metrics:
        _WORKER_ONLY.update(family.name for family in metric.describe())


class _WithoutWorkerMetrics:
    def collect(self) -> Iterable[Metric]:
        for family in REGISTRY.collect():
            if family.name not in _WORKER_ONLY:
                yield family


class APIMetrics(CollectorRegistry):
    """The default registry, less the metrics marked :func:`worker_only`."""

    def __init__(self) -> None:
        super().__init__(auto_describe=False)
        self.register(_WithoutWorkerMetrics())

    def expose(self) -> bytes:
        """The Prometheus text format of these metrics."""
        return generate_latest(self)


@cache
def api_metrics() -> APIMetrics:
    """What an API process exports."""
    return APIMetrics()
