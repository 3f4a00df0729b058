"""Root conftest: every suite gets the local stand-ins (broker, localstripe, mail sink)."""

from __future__ import annotations

import pytest
from cairn_chassis.logging import configure_plain

pytest_plugins = ["cairn_devstack.pytest_plugin"]


def pytest_configure(config: pytest.Config) -> None:
    # In-process services log through structlog; without this its default (rich
    # tracebacks with locals) spends seconds per logged exception.
    configure_plain()
