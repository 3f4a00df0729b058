"""One queued email: rendered for one recipient, with its deterministic id and Message-ID."""

from __future__ import annotations

import uuid
from datetime import datetime

from cairn_chassis.logging import get_logger
from cairn_chassis.tracing import current_traceparent
from cairn_schemas.base import Event

from cairn_notifications.adapters.rendering import EmailRenderer, Person, RenderedEmail
from cairn_notifications.adapters.tables import EmailDelivery
from cairn_notifications.config import Settings
from cairn_notifications.domain.catalogue import EmailKind
from cairn_notifications.service.directory import Directory, template_context

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
        traceparent=current_traceparent(),
        status="failed" if error else "pending",
        attempts=0,
        last_error=error,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
        failed_at=now if error else None,
    )
