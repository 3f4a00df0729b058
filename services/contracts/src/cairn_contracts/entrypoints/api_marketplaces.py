"""Marketplace settings routes (operators set them; anyone of the marketplace reads)."""

from __future__ import annotations

from cairn_schemas.settings import MarketplaceSettings
from fastapi import APIRouter

from cairn_contracts.entrypoints.deps import CallerDep, UnitOfWorkDep
from cairn_contracts.entrypoints.schemas import SettingsPublic
from cairn_contracts.service import marketplaces

router = APIRouter(prefix="/v1/marketplaces", tags=["marketplaces"])


@router.put("/{marketplace_id}/settings", summary="Set a marketplace's settings (operators)")
async def put_settings(
    marketplace_id: str, body: MarketplaceSettings, uow: UnitOfWorkDep, caller: CallerDep
) -> SettingsPublic:
    version, settings = await marketplaces.put_settings(uow, caller, marketplace_id, body)
    return SettingsPublic(marketplace_id=marketplace_id, version=version, settings=settings)


@router.get("/{marketplace_id}/settings", summary="A marketplace's current settings")
async def get_settings(
    marketplace_id: str, uow: UnitOfWorkDep, caller: CallerDep
) -> SettingsPublic:
    version, settings = await marketplaces.get_settings(uow, caller, marketplace_id)
    return SettingsPublic(marketplace_id=marketplace_id, version=version, settings=settings)
