"""The contracts HTTP API (DESIGN §7): paths are part of the contract with front ends;
one router per resource."""

from __future__ import annotations

from datetime import timedelta

from cairn_chassis.db import Database
from cairn_chassis.http import create_app
from fastapi import FastAPI

from cairn_contracts.adapters.change_feed import ChangeFeed
from cairn_contracts.config import MIGRATIONS, Settings
from cairn_contracts.domain.records import Calendar
from cairn_contracts.entrypoints import (
    api_contracts,
    api_disputes,
    api_events,
    api_jobs,
    api_marketplaces,
    api_messages,
    api_milestones,
)
from cairn_contracts.entrypoints.problems import install_domain_errors


def create_api(settings: Settings) -> FastAPI:
    """The contracts service's ASGI app."""
    Calendar.day = timedelta(seconds=settings.day_seconds)
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    app = create_app(
        settings,
        db,
        title="Cairn contracts",
        version="1.0.0",
        description="Marketplaces, jobs, proposals, contracts and the milestone workflow.",
        routers=[
            api_marketplaces.router,
            api_jobs.router,
            api_contracts.router,
            api_events.router,
            api_messages.router,
            api_milestones.router,
            api_disputes.router,
        ],
        migrations=MIGRATIONS,
    )
    install_domain_errors(app)
    api_events.document_stream(app)
    app.state.change_feed = ChangeFeed(db)
    return app
