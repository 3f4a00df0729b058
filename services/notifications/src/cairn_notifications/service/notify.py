"""Use case: an event arrived — update the directory and queue the emails it causes.

Runs inside the consumer's inbox transaction (``messaging.handle_once``), so the inbox
record, the directory change and every queued email commit together or not at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cairn_chassis.logging import get_logger
from cairn_schemas.base import ContractScoped, Event, WithParties
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import (
    MarketplaceSettingsChanged,
    MilestoneRefunded,
    MilestoneReleased,
    MilestoneSettled,
)
from cairn_schemas.registry import event_class
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_notifications.adapters import repository
from cairn_notifications.adapters.rendering import EmailRenderer
from cairn_notifications.adapters.tables import ParkedEvent, utcnow
from cairn_notifications.config import Settings
from cairn_notifications.domain.catalogue import notices_for
from cairn_notifications.service.alerts import alert_operators
from cairn_notifications.service.compose import compose
from cairn_notifications.service.deliver import EMAILS, failure_event_id, record_failure
from cairn_notifications.service.directory import UnknownContract, load_directory, recipients

log = get_logger(__name__)

#: Money events whose email a dispute decision about the same milestone already gave.
DISPUTE_OUTCOMES = frozenset(
    {MilestoneReleased.event_type, MilestoneRefunded.event_type, MilestoneSettled.event_type}
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
    if event.event_type in DISPUTE_OUTCOMES and await repository.dispute_decided(
        session, str(getattr(event, "milestone_id", ""))
    ):
        # The decision's email told each party what they get (with the operator's note);
        # the money moving a second later is not a second email (issue 16).
        log.info("email.outcome_already_told", event_id=event_id, event_type=event.event_type)
        return 0
    queued = 0
    for kind in kinds:
        for person in recipients(kind.audience, directory, settings):
            delivery = compose(event_id, event, kind, person, directory, settings, renderer, now)
            if await repository.add_delivery(session, delivery):
                queued += 1
                if delivery.status == "failed":
                    failed = record_failure(session, delivery, permanent=True)
                    await alert_operators(
                        session,
                        delivery,
                        failed,
                        failure_event_id(delivery),
                        settings,
                        renderer,
                        now,
                    )
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
