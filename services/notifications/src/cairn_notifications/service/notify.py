"""Use case: an event arrived — update the directory and queue the emails it causes.

Runs inside the consumer's inbox transaction (``messaging.handle_once``), so the inbox
record, the directory change and every queued email commit together or not at all.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cairn_chassis.logging import get_logger
from cairn_schemas.base import ContractScoped, Event, WithParties
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import MarketplaceSettingsChanged
from cairn_schemas.registry import event_class
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_notifications.adapters import repository
from cairn_notifications.adapters.rendering import EmailRenderer, Person, RenderedEmail
from cairn_notifications.adapters.tables import EmailDelivery, ParkedEvent, utcnow
from cairn_notifications.config import Settings
from cairn_notifications.domain.catalogue import EmailKind, notices_for
from cairn_notifications.service.deliver import EMAILS, record_failure
from cairn_notifications.service.directory import (
    Directory,
    UnknownContract,
    load_directory,
    recipients,
    template_context,
)

log = get_logger(__name__)

_DELIVERY_NAMESPACE = uuid.UUID("5d0b8f8e-2a44-4c1e-9a55-6c0a7e1f3b21")


def delivery_id(source_event_id: str, recipient_email: str) -> str:
    """The deterministic id of the email about one event to one address."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{source_event_id}/{recipient_email.lower()}"))


def message_id(delivery: str, from_address: str) -> str:
    """The deterministic Message-ID of a delivery: ``<id@from-domain>``."""
    domain = from_address.rpartition("@")[2] or "cairn.localhost"
    return f"<{delivery}@{domain}>"


def compose(
    envelope_id: str,
    event: Event,
    kind: EmailKind,
    person: Person,
    directory: Directory,
    settings: Settings,
    renderer: EmailRenderer,
    now: datetime,
) -> EmailDelivery:
    """The rendered, queued email for one recipient.

    An email that cannot be rendered (a template bug) is recorded as failed, with the
    error, rather than failing the event: the directory update and the other recipients'
    emails still go through, and operators see the failure.
    """
    ident = delivery_id(envelope_id, person.email)
    error: str | None = None
    try:
        rendered = renderer.render(kind, template_context(event, kind, person, directory, settings))
    except Exception as exc:
        log.exception("email.render_failed", template=kind.template, event_id=envelope_id)
        error = f"could not render {kind.template}: {exc!r}"[:2000]
        rendered = RenderedEmail(subject=kind.template, text="", html="")
    return EmailDelivery(
        id=ident,
        source_event_id=envelope_id,
        source_event_type=event.event_type,
        template=kind.template,
        marketplace_id=event.marketplace_id,
        contract_id=getattr(event, "contract_id", None),
        milestone_id=getattr(event, "milestone_id", None),
        recipient_email=person.email,
        recipient_name=person.name,
        recipient_user_id=person.user_id,
        recipient_role=person.role,
        from_address=directory.brand.from_address,
        from_name=directory.brand.display_name,
        reply_to=directory.brand.support_address,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        message_id=message_id(ident, directory.brand.from_address),
        status="failed" if error else "pending",
        attempts=0,
        last_error=error,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
        failed_at=now if error else None,
    )


async def on_event(
    session: AsyncSession,
    envelope: Envelope[Any],
    settings: Settings,
    renderer: EmailRenderer,
) -> int:
    """Project ``envelope`` into the directory and queue its emails; return how many."""
    event: Event = envelope.event
    queued = 0
    if isinstance(event, MarketplaceSettingsChanged):
        await repository.record_branding(session, event, utcnow())
        for parked in await repository.take_parked_for_branding(session, event.marketplace_id):
            queued += await _queue_parked(session, parked, settings, renderer)
        return queued
    if isinstance(event, WithParties):
        await repository.record_parties(session, event, envelope.time)
        for parked in await repository.take_parked(session, event.contract_id):
            queued += await _queue_parked(session, parked, settings, renderer)
    return queued + await _queue_emails(
        session, envelope.id, envelope.time, event, settings, renderer
    )


async def _queue_parked(
    session: AsyncSession, parked: ParkedEvent, settings: Settings, renderer: EmailRenderer
) -> int:
    late = event_class(parked.event_type).model_validate_json(parked.payload)
    return await _queue_emails(
        session, parked.event_id, _aware(parked.event_time), late, settings, renderer
    )


async def _queue_emails(
    session: AsyncSession,
    event_id: str,
    event_time: datetime,
    event: Event,
    settings: Settings,
    renderer: EmailRenderer,
) -> int:
    kinds = notices_for(event)
    if not kinds or not isinstance(event, ContractScoped):
        return 0
    now = utcnow()
    if now - event_time > timedelta(hours=settings.email_max_event_age_hours):
        # Decision 17: counted and logged, not queued (no delivery row).
        for kind in kinds:
            EMAILS.labels(kind.template, "skipped_stale").inc()
        log.warning(
            "email.skipped_stale_event",
            event_id=event_id,
            event_type=event.event_type,
            event_time=event_time.isoformat(),
            emails=[kind.template for kind in kinds],
        )
        return 0
    try:
        directory = await load_directory(session, event, settings)
    except UnknownContract:
        # Its proposal has not reached us yet (another partition or topic is behind):
        # keep the event and send its emails when the parties are known.
        await _park(session, event_id, event_time, event, "contract")
        return 0
    if await repository.get_branding(session, event.marketplace_id) is None:
        # Every marketplace has settings before its first job, so they are on their way on
        # the settings topic: wait for them rather than send an unbranded email.
        await _park(session, event_id, event_time, event, "branding")
        return 0
    queued = 0
    for kind in kinds:
        for person in recipients(kind.audience, directory, settings):
            delivery = compose(event_id, event, kind, person, directory, settings, renderer, now)
            if await repository.add_delivery(session, delivery):
                queued += 1
                if delivery.status == "failed":
                    record_failure(session, delivery, permanent=True)
    return queued


async def _park(
    session: AsyncSession,
    event_id: str,
    event_time: datetime,
    event: ContractScoped,
    waiting_for: str,
) -> None:
    await repository.park(
        session,
        ParkedEvent(
            event_id=event_id,
            contract_id=event.contract_id,
            event_type=event.event_type,
            event_time=event_time,
            payload=event.model_dump_json(),
            parked_at=utcnow(),
            waiting_for=waiting_for,
            marketplace_id=event.marketplace_id,
        ),
    )
    log.warning(
        "email.parked",
        waiting_for=waiting_for,
        event_id=event_id,
        event_type=event.event_type,
        contract_id=event.contract_id,
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
