"""Use case: an operator puts failed emails back in the queue (issue 16: not by SQL).

Each re-queued email gets a new retry window from now and keeps its id and Message-ID, so
it is still sent at most once per event and recipient; a delivered email is never sent
again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cairn_chassis.db import Database
from cairn_chassis.logging import get_logger

from cairn_notifications.adapters import repository
from cairn_notifications.adapters.tables import EmailDelivery, utcnow
from cairn_notifications.config import Settings

log = get_logger(__name__)


async def requeue(
    db: Database,
    settings: Settings,
    *,
    marketplace_id: str | None = None,
    delivery_ids: Sequence[str] = (),
    failed_since: datetime | None = None,
) -> list[EmailDelivery]:
    """Re-queue the failed emails the filters name; the ones re-queued."""
    now = utcnow()
    async with db.transaction() as session:
        rows = await repository.requeue_failed(
            session,
            now=now,
            retry_until=now + timedelta(seconds=settings.delivery_retry_window_s),
            marketplace_id=marketplace_id,
            delivery_ids=delivery_ids,
            failed_since=failed_since,
        )
    for row in rows:
        log.info("email.requeued", delivery_id=row.id, template=row.template)
    return rows
