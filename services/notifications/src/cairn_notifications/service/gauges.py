"""The delivery log as a gauge, kept by the worker (the sender's process)."""

from __future__ import annotations

from cairn_chassis.db import Database
from cairn_chassis.metrics import worker_only
from prometheus_client import Gauge

from cairn_notifications.adapters import repository
from cairn_notifications.adapters.tables import DELIVERY_STATUSES

DELIVERIES = Gauge(
    "cairn_notifications_deliveries",
    "Emails in the delivery log by status (failed ones need an operator's eye)",
    ["status"],
)
worker_only(DELIVERIES)


async def measure_deliveries(db: Database) -> dict[str, int]:
    """Count the delivery log by status and set the gauge (every status, zeros too)."""
    async with db.transaction() as session:
        counts = await repository.count_by_status(session)
    for status in DELIVERY_STATUSES:
        DELIVERIES.labels(status).set(counts.get(status, 0))
    return counts
