"""``cairn-contracts``: api, worker, migrate, openapi, asyncapi, dev-token."""

from __future__ import annotations

from typing import Any

from cairn_chassis.cli import ServiceCLI
from cairn_chassis.db import Database
from cairn_chassis.settings import ServiceSettings
from faststream.kafka import KafkaBroker

from cairn_contracts.config import MIGRATIONS, Settings, load_settings
from cairn_contracts.entrypoints import worker
from cairn_contracts.entrypoints.api import create_api
from cairn_contracts.entrypoints.consumers import build_broker


def _settings(s: ServiceSettings) -> Settings:
    assert isinstance(s, Settings)
    return s


def _broker(s: ServiceSettings) -> KafkaBroker:
    settings = _settings(s)
    return build_broker(settings, Database(settings.database_url))


def _worker(s: ServiceSettings) -> Any:
    return worker.run(_settings(s))


def main() -> int:
    """Entry point of the console script."""
    return ServiceCLI(
        name="contracts",
        version="1.0.0",
        settings=load_settings,
        app=lambda s: create_api(_settings(s)),
        broker=_broker,
        worker=_worker,
        migrations_dir=MIGRATIONS,
    ).main()
