"""Marketplace settings: versioned, published on the compacted settings topic."""

from __future__ import annotations

from cairn_schemas.events import MarketplaceSettingsChanged
from cairn_schemas.settings import MarketplaceSettings

from cairn_contracts.domain.errors import NotFound, Refused
from cairn_contracts.domain.model import Caller
from cairn_contracts.service.unit_of_work import UnitOfWork


async def current_settings(uow: UnitOfWork, marketplace_id: str) -> tuple[int, MarketplaceSettings]:
    """The marketplace's current settings version, or not found if never set up."""
    found = await uow.marketplaces.current(marketplace_id)
    if found is None:
        raise NotFound(
            "marketplace.not_found",
            "This marketplace has no settings yet; an operator must set them up.",
        )
    return found


async def put_settings(
    uow: UnitOfWork, caller: Caller, marketplace_id: str, settings: MarketplaceSettings
) -> tuple[int, MarketplaceSettings]:
    """Store a new settings version (creating the marketplace) and publish it."""
    if caller.role != "operator":
        raise Refused("auth.wrong_role", "Only an operator can change settings.")
    if caller.marketplace_id != marketplace_id:
        raise NotFound("marketplace.not_found", "No such marketplace.")
    async with uow:
        await uow.marketplaces.lock(marketplace_id)
        current = await uow.marketplaces.current(marketplace_id)
        if current is not None and current[1] == settings:
            return current  # unchanged: no new version
        version = 1 if current is None else current[0] + 1
        await uow.marketplaces.add_version(marketplace_id, version, settings, caller.user_id)
        uow.publish(
            MarketplaceSettingsChanged(
                marketplace_id=marketplace_id,
                version=version,
                settings=settings,
                changed_by=caller.actor,
            )
        )
        await uow.commit()
    return version, settings


async def get_settings(
    uow: UnitOfWork, caller: Caller, marketplace_id: str
) -> tuple[int, MarketplaceSettings]:
    """The current settings, for anyone signed in to that marketplace."""
    if caller.marketplace_id != marketplace_id:
        raise NotFound("marketplace.not_found", "No such marketplace.")
    async with uow:
        return await current_settings(uow, marketplace_id)
