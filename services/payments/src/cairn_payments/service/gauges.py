"""How long the oldest escrow has been reconciling, kept by the worker.

``cairn_payments_escrows_reconciling`` counts escrows; an alert on "some escrow for 30
minutes" fired for a stream of short, healthy reconciliations. The age of the oldest one
says what the alert means: money whose state nobody has known for that long.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cairn_chassis.db import Database
from cairn_chassis.metrics import worker_only
from prometheus_client import Gauge
from sqlmodel import col, func, select

from cairn_payments.adapters.tables import EscrowRow

OLDEST_RECONCILING_AGE = Gauge(
    "cairn_payments_oldest_reconciling_age_seconds",
    "Time since the oldest escrow in `reconciling` last changed (0 when none is)",
)
worker_only(OLDEST_RECONCILING_AGE)


async def measure_reconciling(db: Database, now: datetime) -> float:
    """Set and return the oldest reconciling escrow's age in seconds."""
    async with db.transaction() as session:
        oldest = (
            await session.exec(
                select(func.min(col(EscrowRow.updated_at))).where(EscrowRow.state == "reconciling")
            )
        ).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)  # SQLite keeps no zone; everything stored is UTC
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    OLDEST_RECONCILING_AGE.set(age)
    return age
