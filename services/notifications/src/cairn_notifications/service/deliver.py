"""Use case: send the queued emails, retrying what may succeed later (DESIGN §5, §8).

Each attempt is written down before the SMTP conversation (status ``sending``, attempts
+1, a lease) and its outcome right after, in the same transaction as the delivery event
on the outbox. A sender that dies mid-send leaves a ``sending`` row whose lease runs out;
another sender then retries it with the same Message-ID.

Retries are bounded by time, not by a count (issue 16): an email is tried until its retry
window (``NOTIFICATIONS_DELIVERY_RETRY_WINDOW_S`` from when it was queued or re-queued)
runs out, so no outage shorter than the window loses it. Every exception a send raises is
classified: the SMTP server's own answers as :class:`DeliveryError` says, anything else
(an email that cannot even be built) is a poison email that fails at once, with its
reason. A failed email is announced (``cairn.delivery.failed``) and its marketplace's
operators are emailed (:mod:`cairn_notifications.service.alerts`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cairn_chassis.correlation import handling_event
from cairn_chassis.db import Database
from cairn_chassis.logging import get_logger
from cairn_chassis.metrics import worker_only
from cairn_chassis.outbox import add_event
from cairn_chassis.tracing import parent_context, tracer
from cairn_schemas.events import DeliveryFailed, DeliverySucceeded
from opentelemetry.trace import SpanKind
from prometheus_client import Counter
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_notifications.adapters import repository
from cairn_notifications.adapters.rendering import EmailRenderer
from cairn_notifications.adapters.smtp import DeliveryError, OutgoingEmail
from cairn_notifications.adapters.tables import EmailDelivery, utcnow
from cairn_notifications.config import Settings
from cairn_notifications.service.alerts import alert_operators

log = get_logger(__name__)

SOURCE = "/cairn/notifications"
EMAILS = Counter(
    "cairn_notifications_emails_total",
    "Emails by outcome (delivered, retried, failed; skipped_stale: its event was older "
    "than NOTIFICATIONS_EMAIL_MAX_EVENT_AGE_HOURS, so it was never queued)",
    ["template", "outcome"],
)
worker_only(EMAILS)
_EVENT_NAMESPACE = uuid.UUID("0c6f3a52-8a0e-4f43-8b57-0f8e0d7f6a11")


def record_failure(session: AsyncSession, row: EmailDelivery, *, permanent: bool) -> DeliveryFailed:
    """Announce a failed email on the outbox (``cairn.delivery.failed``), in ``session``;
    the event (for the operators' alert), published only if it is a valid one."""
    fields: dict[str, Any] = dict(
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
    )
    try:
        failed = DeliveryFailed(**fields)
    except ValidationError as exc:
        # What failed may be the very address the event must carry (a mistyped setting):
        # the failure stays on record and the operators are still told, by email.
        log.error("email.failure_not_announced", delivery_id=row.id, error=str(exc))
        failed = DeliveryFailed.model_construct(**fields)
    else:
        # One event per failure: an email re-queued by an operator may fail again.
        add_event(session, failed, source=SOURCE, event_id=failure_event_id(row))
    log.error(
        "email.failed",
        delivery_id=row.id,
        template=row.template,
        marketplace_id=row.marketplace_id,
        attempts=row.attempts,
        reason=failed.reason,
        permanent=permanent,
    )
    return failed


def failure_event_id(row: EmailDelivery) -> str:
    """The id of the ``cairn.delivery.failed`` event of the row's latest failure."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{row.id}/failed/{row.attempts}"))


def retry_deadline(row: EmailDelivery, settings: Settings) -> datetime:
    """When the email's retries end: its ``retry_until``, else the window from its queueing."""
    if row.retry_until is not None:
        return _aware(row.retry_until)
    return _aware(row.created_at) + timedelta(seconds=settings.delivery_retry_window_s)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


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
        renderer: EmailRenderer | None = None,
    ) -> None:
        self._db = db
        self._sender = sender
        self._settings = settings
        self._clock = clock
        self._renderer = renderer or EmailRenderer()
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
        # Its log lines and delivery event name the event the email is about; its SMTP
        # span continues the trace that event's consumer queued it in.
        with (
            handling_event(
                event_id=row.source_event_id,
                event_type=row.source_event_type,
                consumer="email-sender",
                contract_id=row.contract_id,
            ),
            tracer().start_as_current_span(
                "smtp send",
                context=parent_context(row.traceparent),
                kind=SpanKind.CLIENT,
                attributes={"cairn.delivery_id": row.id, "cairn.email.template": row.template},
            ),
        ):
            await self._try(row)

    async def _try(self, row: EmailDelivery) -> None:
        if self._clock() >= retry_deadline(row, self._settings):
            # Claimed after its window (a worker that was down, or that died sending it
            # again and again): retries are over, it is not sent again.
            window = timedelta(seconds=self._settings.delivery_retry_window_s)
            reason = f"not delivered within the retry window ({window})"
            if row.last_error:
                reason += f"; last error: {row.last_error}"
            await self._record_failure(row, DeliveryError(reason, permanent=False))
            return
        try:
            await self._sender.send(outgoing(row))
        except DeliveryError as exc:
            await self._record_failure(row, exc)
            return
        except Exception as exc:
            # Not the SMTP server's answer but the email itself (a header that cannot be
            # built, say): trying again would fail the same way, and an exception that
            # escaped here left the email in `sending` for ever (issue 16).
            log.exception("email.poison", delivery_id=row.id, template=row.template)
            await self._record_failure(
                row, DeliveryError(f"the email cannot be sent: {exc!r}", permanent=True)
            )
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
            next_try = now + backoff(self._settings, row.attempts)
            if not error.permanent and next_try < retry_deadline(row, self._settings):
                row.status = "pending"
                row.next_attempt_at = next_try
                session.add(row)
                outcome = "retried"
            else:
                row.status = "failed"
                row.failed_at = now
                session.add(row)
                failed = record_failure(session, row, permanent=error.permanent)
                await alert_operators(
                    session,
                    row,
                    failed,
                    failure_event_id(row),
                    self._settings,
                    self._renderer,
                    now,
                )
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
