"""Marketplace settings (topic ``cairn.marketplaces.v1``: compacted, key = marketplace id)."""

from __future__ import annotations

from cairn_schemas import topics
from cairn_schemas.base import Actor, Event, Version
from cairn_schemas.settings import MarketplaceSettings


class MarketplaceSettingsChanged(Event):
    """An operator saved a marketplace's settings; the full new settings, not a diff.

    The topic is compacted, so the latest of these per marketplace is always there for a
    consumer starting from scratch. Contracts keep the ``version`` they started with.
    """

    event_type = "cairn.marketplace.settings_changed"
    topic = topics.MARKETPLACES

    version: Version
    settings: MarketplaceSettings
    changed_by: Actor | None = None
