"""The payments HTTP API (FastAPI app factory)."""

from __future__ import annotations

from cairn_chassis.db import Database
from cairn_chassis.http import create_app as create_service_app
from cairn_chassis.settings import ServiceSettings
from fastapi import FastAPI

from cairn_payments.adapters.stripe_gateway import StripeGateway
from cairn_payments.config import MIGRATIONS, Settings
from cairn_payments.entrypoints import api_escrow, api_profiles, api_webhooks
from cairn_payments.service.context import PaymentsContext

VERSION = "0.1.0"


def create_app(settings: ServiceSettings, *, context: PaymentsContext | None = None) -> FastAPI:
    """The API app; tests may pass a ready ``context``."""
    assert isinstance(settings, Settings)
    if context is None:
        db = Database(settings.database_url, pool_size=settings.database_pool_size)
        context = PaymentsContext(settings=settings, db=db, gateway=StripeGateway(settings))
    routers = [api_profiles.router, api_escrow.router, api_webhooks.router]
    app = create_service_app(
        settings,
        context.db,
        title="Cairn payments",
        version=VERSION,
        description="Payment profiles, milestone escrow on Stripe Connect, the ledger and "
        "Stripe webhooks.",
        routers=routers,
        migrations=MIGRATIONS,
    )
    app.state.payments = context
    return app
