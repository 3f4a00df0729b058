"""Processed Stripe webhook events are purged after their retention; unprocessed ones never."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import pytest
from cairn_chassis.db import Database
from cairn_chassis.outbox import utcnow
from cairn_chassis.retention import purge_expired
from cairn_devstack.postgres import acreate_database, drop_database
from cairn_payments.adapters.tables import StripeEventRow
from cairn_payments.config import Settings
from cairn_payments.entrypoints.worker import retention_rules
from sqlmodel import SQLModel, col, select

pytestmark = pytest.mark.integration


async def test_only_old_processed_webhook_events_are_purged() -> None:
    db = Database(await acreate_database(f"cairn_payments_retention_test_{os.getpid()}"))
    table = StripeEventRow.__table__  # type: ignore[attr-defined]
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.drop_all, tables=[table])
            await conn.run_sync(SQLModel.metadata.create_all, tables=[table])
        now = utcnow()
        old, recent = now - timedelta(days=31), now - timedelta(days=2)
        async with db.transaction() as session:
            for event_id, received, processed in [
                ("evt_old_done", old, old),
                ("evt_old_pending", old, None),  # still to process: never dropped
                ("evt_recent_done", recent, recent),  # Stripe may still retry it
            ]:
                session.add(
                    StripeEventRow(
                        id=event_id,
                        type="payment_intent.succeeded",
                        payload="{}",
                        received_at=received,
                        processed_at=processed,
                    )
                )

        deleted = await purge_expired(
            db, retention_rules(Settings(retention_stripe_event_days=30)), now
        )

        assert deleted == {"stripe_events": 1}
        async with db.session() as session:
            left = set((await session.exec(select(col(StripeEventRow.id)))).all())
        assert left == {"evt_old_pending", "evt_recent_done"}
        assert retention_rules(Settings(retention_stripe_event_days=0)) == []
    finally:
        await db.dispose()
        await asyncio.to_thread(drop_database, f"cairn_payments_retention_test_{os.getpid()}")
