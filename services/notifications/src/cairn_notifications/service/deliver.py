"""Use case: send the queued emails, retrying what may succeed later (DESIGN §5, §8).

Each attempt is written down before the SMTP conversation (status ``sending``, attempts
+1, a lease) and its outcome right after, in the same transaction as the delivery event
on the outbox. A sender that dies mid-send leaves a ``sending`` row whose lease runs out;
another sender then retries it with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from cairn_chassis.db import Database
from cairn_chassis.logging import get_logger
from cairn_chassis.outbox import add_event
from cairn_schemas.events import DeliveryFailed, DeliverySucceeded
from prometheus_client import Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_notifications.adapters import repository
from cairn_notifications.adapters.smtp import DeliveryError, OutgoingEmail
from cairn_notifications.adapters.tables import EmailDelivery, utcnow
from cairn_notifications.config import Settings

log = get_logger(__name__)

SOURCE = "/cairn/notifications"
EMAILS = Counter(
    "cairn_notifications_emails_total",
    "Emails by outcome (delivered, retried, failed; skipped_stale: its event was older "
    "than NOTIFICATIONS_EMAIL_MAX_EVENT_AGE_HOURS, so it was never queued)",
    ["template", "outcome"],
)
_EVENT_NAMESPACE = uuid.UUID("0c6f3a52-8a0e-4f43-8b57-0f8e0d7f6a11")


def record_failure(session: AsyncSession, row: EmailDelivery, *, permanent: bool) -> None:
    """Announce a failed email on the outbox (``cairn.delivery.failed``), in ``session``."""
    add_event(
        session,
        DeliveryFailed(
            marketplace_id=row.marketplace_id,
            delivery_id=row.id,
            source_event_id=row.source_event_id,
            source_event_type=row.source_event_type,
            contract_id=row.contract_id,
            recipient=row.recipient_email,
            recipient_user_id=row.recipient_user_id,
            template=row.template,
            attempts=max(row.attempts, 1),
            reason=row.last_error or "delivery failed",
            permanent=permanent,
        ),
        source=SOURCE,
        event_id=str(uuid.uuid5(_EVENT_NAMESPACE, f"{row.id}/failed")),
    )


class Sender(Protocol):
    """Puts one email on the wire or raises DeliveryError."""

    async def send(self, email: OutgoingEmail) -> None: ...


def outgoing(row: EmailDelivery) -> OutgoingEmail:
    """The email a delivery row describes."""
    return OutgoingEmail(
        message_id=row.message_id,
        from_name=row.from_name,
        from_address=row.from_address,
        to_name=row.recipient_name,
        to_address=row.recipient_email,
        reply_to=row.reply_to,
        subject=row.subject,
        text=row.text_body,
        html=row.html_body,
        headers={
            "X-Cairn-Delivery-Id": row.id,
            "X-Cairn-Event-Id": row.source_event_id,
            "X-Cairn-Template": row.template,
        },
    )


def backoff(settings: Settings, attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed try."""
    seconds = settings.delivery_backoff_initial_s * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.delivery_backoff_max_s))


class EmailDispatcher:
    """Sends due emails in batches until stopped."""

    def __init__(
        self,
        db: Database,
        sender: Sender,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._sender = sender
        self._settings = settings
        self._clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Emails were just queued in this process: send them now, not at the next poll."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until ``stopping`` is set; database trouble backs off and retries."""
        pause = self._settings.delivery_poll_interval_s
        while not stopping.is_set():
            # A wake-up arriving while this pass runs makes the next pause end at once.
            self._wake.clear()
            try:
                sent = await self.deliver_due()
                pause = self._settings.delivery_poll_interval_s
            except Exception as exc:
                log.warning("email.dispatch_failed", error=repr(exc))
                sent = 0
                pause = min(max(pause, 0.1) * 2, 10.0)
            if sent == 0:
                await self._pause(stopping, pause)

    async def _pause(self, stopping: asyncio.Event, seconds: float) -> None:
        """Sleep ``seconds``, or less if stopped or woken (the poll stays the fallback:
        emails queued by another worker instance, retries coming due)."""
        waits = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    async def deliver_due(self) -> int:
        """Claim as many due emails as may be sent at once and try each; return how many.

        Claiming no more than can be sent concurrently keeps every send well inside its
        lease, so a live sender's email is never taken over by another.
        """
        lease = timedelta(seconds=self._settings.delivery_lease_s)
        async with self._db.transaction() as session:
            rows = await repository.claim_due(
                session,
                self._clock(),
                limit=self._settings.delivery_concurrency,
                lease=lease,
                postgres=self._db.is_postgres,
            )
        if rows:
            await asyncio.gather(*(self._attempt(row) for row in rows))
        return len(rows)

    async def _attempt(self, row: EmailDelivery) -> None:
        try:
            await self._sender.send(outgoing(row))
        except DeliveryError as exc:
            await self._record_failure(row, exc)
            return
        await self._record_success(row)

    async def _record_success(self, claimed: EmailDelivery) -> None:
        now = self._clock()
        async with self._db.transaction() as session:
            row = await repository.lock_delivery(session, claimed.id)
            if row is None or row.status != "sending":
                return
            row.status = "delivered"
            row.delivered_at = now
            row.updated_at = now
            row.lease_until = None
            row.last_error = None
            session.add(row)
            add_event(
                session,
                DeliverySucceeded(
                    marketplace_id=row.marketplace_id,
                    delivery_id=row.id,
                    source_event_id=row.source_event_id,
                    source_event_type=row.source_event_type,
                    contract_id=row.contract_id,
                    recipient=row.recipient_email,
                    recipient_user_id=row.recipient_user_id,
                    template=row.template,
                    attempts=row.attempts,
                    message_id=row.message_id,
                ),
                source=SOURCE,
                event_id=str(uuid.uuid5(_EVENT_NAMESPACE, f"{row.id}/delivered")),
            )
        EMAILS.labels(claimed.template, "delivered").inc()
        log.info(
            "email.delivered",
            delivery_id=claimed.id,
            template=claimed.template,
            attempts=claimed.attempts,
        )

    async def _record_failure(self, claimed: EmailDelivery, error: DeliveryError) -> None:
        now = self._clock()
        async with self._db.transaction() as session:
            row = await repository.lock_delivery(session, claimed.id)
            if row is None or row.status != "sending":
                return
            row.last_error = error.reason[:2000]
            row.lease_until = None
            row.updated_at = now
            out_of_tries = row.attempts >= self._settings.delivery_max_attempts
            if not error.permanent and not out_of_tries:
                row.status = "pending"
                row.next_attempt_at = now + backoff(self._settings, row.attempts)
                session.add(row)
                outcome = "retried"
            else:
                row.status = "failed"
                row.failed_at = now
                session.add(row)
                record_failure(session, row, permanent=error.permanent)
                outcome = "failed"
        EMAILS.labels(claimed.template, outcome).inc()
        log.warning(
            "email.not_delivered",
            delivery_id=claimed.id,
            template=claimed.template,
            attempts=claimed.attempts,
            outcome=outcome,
            reason=error.reason,
            permanent=error.permanent,
        )
