"""Use case: an event arrived — update the directory and queue the emails it causes.

Runs inside the consumer's inbox transaction (``messaging.handle_once``), so the inbox
record, the directory change and every queued email commit together or not at all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cairn_chassis.logging import get_logger
from cairn_schemas.base import ContractScoped, Event, WithParties
from cairn_schemas.cloudevents import Envelope
from cairn_schemas.events import MarketplaceSettingsChanged, MessagePosted
from cairn_schemas.registry import event_class
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_notifications.adapters import repository
from cairn_notifications.adapters.rendering import (
    Brand,
    ContractView,
    EmailRenderer,
    Person,
    RenderedEmail,
)
from cairn_notifications.adapters.tables import (
    EmailDelivery,
    MarketplaceBranding,
    ParkedEvent,
    utcnow,
)
from cairn_notifications.config import Settings
from cairn_notifications.domain.catalogue import Audience, EmailKind, notices_for
from cairn_notifications.service.deliver import record_failure

log = get_logger(__name__)

_DELIVERY_NAMESPACE = uuid.UUID("5d0b8f8e-2a44-4c1e-9a55-6c0a7e1f3b21")


class UnknownContract(LookupError):
    """An event names a contract whose parties the directory has not seen yet."""


@dataclass(frozen=True)
class Directory:
    """Who is on one contract, and how their marketplace looks."""

    contract: ContractView
    customer: Person
    freelancer: Person
    brand: Brand


def delivery_id(source_event_id: str, recipient_email: str) -> str:
    """The deterministic id of the email about one event to one address."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{source_event_id}/{recipient_email.lower()}"))


def message_id(delivery: str, from_address: str) -> str:
    """The deterministic Message-ID of a delivery: ``<id@from-domain>``."""
    domain = from_address.rpartition("@")[2] or "cairn.localhost"
    return f"<{delivery}@{domain}>"


def default_brand(settings: Settings) -> Brand:
    """Branding used until a marketplace's settings arrive (the email still goes out)."""
    return Brand(
        display_name=settings.default_display_name,
        from_address=settings.default_from_address,
        support_address=settings.default_support_address,
        logo_url=settings.default_logo_url,
        accent_colour=settings.default_accent_colour,
    )


def brand_of(row: MarketplaceBranding | None, settings: Settings) -> Brand:
    """The stored branding of a marketplace, or the default."""
    if row is None:
        return default_brand(settings)
    return Brand(
        display_name=row.display_name,
        from_address=row.from_address,
        support_address=row.support_address,
        logo_url=row.logo_url,
        accent_colour=row.accent_colour,
    )


def link_for(settings: Settings, event: Event, audience: Audience) -> str:
    """The front-end page an email points to, from the configured URL pattern."""
    return settings.frontend_url_pattern.format(
        marketplace_id=event.marketplace_id,
        contract_id=getattr(event, "contract_id", "") or "",
        milestone_id=getattr(event, "milestone_id", "") or "",
        role=audience,
    )


def author_name(event: Event, directory: Directory) -> str:
    """Who wrote a message, as the recipient knows them."""
    if not isinstance(event, MessagePosted):
        return ""
    if event.author.role == "customer":
        return directory.customer.name
    if event.author.role == "freelancer":
        return directory.freelancer.name
    return f"{directory.brand.display_name} support"


def recipients(audience: Audience, directory: Directory, settings: Settings) -> list[Person]:
    """The people behind an audience."""
    if audience == "customer":
        return [directory.customer]
    if audience == "freelancer":
        return [directory.freelancer]
    addresses = settings.operator_alert_addresses or [directory.brand.support_address]
    name = f"{directory.brand.display_name} operators"
    return [Person(email=a, name=name, role="operator") for a in addresses]


def template_context(
    event: Event, kind: EmailKind, person: Person, directory: Directory, settings: Settings
) -> dict[str, Any]:
    """What a template may use."""
    return {
        "event": event,
        "brand": directory.brand,
        "recipient": person,
        "contract": directory.contract,
        "audience": kind.audience,
        "link": link_for(settings, event, kind.audience),
        "author_name": author_name(event, directory),
    }


def directory_from_event(event: WithParties, brand: Brand) -> Directory:
    """The directory entry a proposal/contract event carries itself."""
    return Directory(
        contract=ContractView(
            contract_id=event.contract_id,
            job_title=event.job_title,
            customer_name=event.customer.name,
            freelancer_name=event.freelancer.name,
        ),
        customer=Person(
            event.customer.email, event.customer.name, "customer", event.customer.user_id
        ),
        freelancer=Person(
            event.freelancer.email, event.freelancer.name, "freelancer", event.freelancer.user_id
        ),
        brand=brand,
    )


async def load_directory(
    session: AsyncSession, event: ContractScoped, settings: Settings
) -> Directory:
    """The contract's parties and the marketplace's branding, from the projections."""
    brand = brand_of(await repository.get_branding(session, event.marketplace_id), settings)
    if isinstance(event, WithParties):
        return directory_from_event(event, brand)
    row = await repository.get_parties(session, event.contract_id)
    if row is None:
        raise UnknownContract(
            f"{event.event_type} for contract {event.contract_id}, whose proposal the "
            "directory has not seen"
        )
    return Directory(
        contract=ContractView(
            contract_id=row.contract_id,
            job_title=row.job_title,
            customer_name=row.customer_name,
            freelancer_name=row.freelancer_name,
        ),
        customer=Person(row.customer_email, row.customer_name, "customer", row.customer_user_id),
        freelancer=Person(
            row.freelancer_email, row.freelancer_name, "freelancer", row.freelancer_user_id
        ),
        brand=brand,
    )


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
    if isinstance(event, MarketplaceSettingsChanged):
        await repository.record_branding(session, event, utcnow())
        return 0
    queued = 0
    if isinstance(event, WithParties):
        await repository.record_parties(session, event, envelope.time)
        for parked in await repository.take_parked(session, event.contract_id):
            late = event_class(parked.event_type).model_validate_json(parked.payload)
            queued += await _queue_emails(
                session, parked.event_id, _aware(parked.event_time), late, settings, renderer
            )
    return queued + await _queue_emails(
        session, envelope.id, envelope.time, event, settings, renderer
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
        log.info(
            "email.skipped_stale_event",
            event_id=event_id,
            event_type=event.event_type,
            event_time=event_time.isoformat(),
        )
        return 0
    try:
        directory = await load_directory(session, event, settings)
    except UnknownContract:
        # Its proposal has not reached us yet (another partition or topic is behind):
        # keep the event and send its emails when the parties are known.
        await repository.park(
            session,
            ParkedEvent(
                event_id=event_id,
                contract_id=event.contract_id,
                event_type=event.event_type,
                event_time=event_time,
                payload=event.model_dump_json(),
                parked_at=now,
            ),
        )
        log.warning(
            "email.parked_unknown_contract",
            event_id=event_id,
            event_type=event.event_type,
            contract_id=event.contract_id,
        )
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


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
