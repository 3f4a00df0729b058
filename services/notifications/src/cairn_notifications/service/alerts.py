"""Operators hear about an email that could not be delivered (issue 16).

A failed email is visible in the delivery log and announced on the notifications topic,
but someone has to look: so its marketplace's operators (its support address) get an
email saying which email failed, to whom, and why, queued in the same transaction as the
failure. An alert about a failed alert is never sent (an SMTP outage would feed itself).
"""

from __future__ import annotations

from datetime import datetime

from cairn_chassis.logging import get_logger
from cairn_schemas.events import DeliveryFailed
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_notifications.adapters import repository
from cairn_notifications.adapters.rendering import ContractView, EmailRenderer, Person
from cairn_notifications.adapters.tables import EmailDelivery
from cairn_notifications.config import Settings
from cairn_notifications.domain.catalogue import EMAILS
from cairn_notifications.service.compose import compose
from cairn_notifications.service.directory import Directory, brand_of, recipients

log = get_logger(__name__)

ALERT = EMAILS[DeliveryFailed.event_type]["operators"]


async def alert_operators(
    session: AsyncSession,
    failed: EmailDelivery,
    event: DeliveryFailed,
    event_id: str,
    settings: Settings,
    renderer: EmailRenderer,
    now: datetime,
) -> int:
    """Queue the operators' email about ``failed`` (in ``session``); how many were queued."""
    if failed.template == ALERT.template:
        return 0
    brand = brand_of(await repository.get_branding(session, failed.marketplace_id), settings)
    parties = (
        await repository.get_parties(session, failed.contract_id) if failed.contract_id else None
    )
    directory = Directory(
        contract=ContractView(
            contract_id=failed.contract_id or "",
            job_title=parties.job_title if parties else "",
            customer_name=parties.customer_name if parties else "",
            freelancer_name=parties.freelancer_name if parties else "",
        ),
        customer=Person("", "", "customer"),
        freelancer=Person("", "", "freelancer"),
        brand=brand,
    )
    queued = 0
    for person in recipients("operators", directory, settings):
        alert = compose(event_id, event, ALERT, person, directory, settings, renderer, now)
        if alert.status == "failed":
            # Not rendered: do not queue an alert that could only fail in its turn.
            log.error("email.alert_not_rendered", delivery_id=failed.id, error=alert.last_error)
            continue
        if await repository.add_delivery(session, alert):
            queued += 1
    return queued
