"""Who an email goes to and how it looks: the contract's parties from the directory, the
marketplace's branding, and what the templates may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cairn_schemas.base import ContractScoped, Event, WithParties
from cairn_schemas.events import MessagePosted
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_notifications.adapters import repository
from cairn_notifications.adapters.rendering import Brand, ContractView, Person
from cairn_notifications.adapters.tables import MarketplaceBranding
from cairn_notifications.config import Settings
from cairn_notifications.domain.catalogue import Audience, EmailKind


class UnknownContract(LookupError):
    """An event names a contract whose parties the directory has not seen yet."""


@dataclass(frozen=True)
class Directory:
    """Who is on one contract, and how their marketplace looks."""

    contract: ContractView
    customer: Person
    freelancer: Person
    brand: Brand


def default_brand(settings: Settings) -> Brand:
    """Branding used until a marketplace's settings arrive (the email still goes out)."""
    return Brand(
        display_name=settings.default_display_name,
        from_address=settings.default_from_address,
        support_address=settings.default_support_address,
        logo_url=settings.default_logo_url,
        accent_colour=settings.default_accent_colour,
        own=False,
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
    # A marketplace's own operators hear about its disputes, chargebacks and failed emails
    # at its support address; the deployment-wide addresses are for what has no
    # marketplace branding to go by.
    if directory.brand.own:
        addresses = [directory.brand.support_address]
    else:
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
