"""Marketplace settings: versioned, published on the compacted settings topic."""

from __future__ import annotations

from cairn_chassis.db import Database, locked
from cairn_chassis.outbox import utcnow
from cairn_schemas.events import MarketplaceSettingsChanged
from cairn_schemas.settings import MarketplaceSettings
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_contracts.adapters.tables import MarketplaceRow, SettingsVersionRow
from cairn_contracts.domain.errors import NotFound
from cairn_contracts.service.common import Caller, publish


async def put_settings(
    db: Database, caller: Caller, marketplace_id: str, settings: MarketplaceSettings
) -> tuple[int, MarketplaceSettings]:
    """Store a new settings version (creating the marketplace) and publish it."""
    if caller.marketplace_id != marketplace_id:
        raise NotFound("marketplace.not_found", "No such marketplace.")
    async with db.transaction() as session:
        market = (
            await session.exec(
                locked(select(MarketplaceRow).where(MarketplaceRow.id == marketplace_id))
            )
        ).first()
        if market is None:
            market = MarketplaceRow(id=marketplace_id, current_version=1)
        else:
            current = await _version(session, marketplace_id, market.current_version)
            if current == settings:
                return market.current_version, current  # unchanged: no new version
            market.current_version += 1
            market.updated_at = utcnow()
        session.add(market)
        await session.flush()
        session.add(
            SettingsVersionRow(
                marketplace_id=marketplace_id,
                version=market.current_version,
                settings=settings.model_dump_json(),
                changed_by=caller.user_id,
            )
        )
        publish(
            session,
            MarketplaceSettingsChanged(
                marketplace_id=marketplace_id,
                version=market.current_version,
                settings=settings,
                changed_by=caller.actor,
            ),
        )
        return market.current_version, settings


async def _version(session: AsyncSession, marketplace_id: str, version: int) -> MarketplaceSettings:
    row = (
        await session.exec(
            select(SettingsVersionRow).where(
                SettingsVersionRow.marketplace_id == marketplace_id,
                SettingsVersionRow.version == version,
            )
        )
    ).one()
    return MarketplaceSettings.model_validate_json(row.settings)


async def current_settings(
    session: AsyncSession, marketplace_id: str
) -> tuple[int, MarketplaceSettings]:
    """The marketplace's current settings version, or 404 if it was never set up."""
    row = (
        await session.exec(
            select(SettingsVersionRow)
            .where(SettingsVersionRow.marketplace_id == marketplace_id)
            .order_by(col(SettingsVersionRow.version).desc())
            .limit(1)
        )
    ).first()
    if row is None:
        raise NotFound(
            "marketplace.not_found",
            "This marketplace has no settings yet; an operator must set them up.",
        )
    return row.version, MarketplaceSettings.model_validate_json(row.settings)


async def get_settings(
    db: Database, caller: Caller, marketplace_id: str
) -> tuple[int, MarketplaceSettings]:
    """The current settings, for anyone signed in to that marketplace."""
    if caller.marketplace_id != marketplace_id:
        raise NotFound("marketplace.not_found", "No such marketplace.")
    async with db.transaction() as session:
        return await current_settings(session, marketplace_id)
