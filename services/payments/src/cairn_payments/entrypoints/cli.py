"""``cairn-payments``: api, worker, migrate, openapi, asyncapi, dev-token."""

from __future__ import annotations

from cairn_chassis.cli import ServiceCLI
from cairn_chassis.settings import ServiceSettings
from faststream.kafka import KafkaBroker

from cairn_payments.config import MIGRATIONS, Settings
from cairn_payments.entrypoints.api import VERSION, create_app
from cairn_payments.entrypoints.consumers import build_broker
from cairn_payments.entrypoints.worker import build_context, run


def _broker(settings: ServiceSettings) -> KafkaBroker:
    assert isinstance(settings, Settings)
    # With the worker's context, so the AsyncAPI document lists every event it handles.
    return build_broker(settings, build_context(settings))


def main() -> int:
    """Entry point of the ``cairn-payments`` console script."""
    return ServiceCLI(
        name="payments",
        version=VERSION,
        settings=Settings,
        app=create_app,
        broker=_broker,
        worker=run,
        migrations_dir=MIGRATIONS,
    ).main()
