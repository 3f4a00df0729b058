"""Issue 16: production accepted development secrets. With CAIRN_ENV=production (the
default, and the images') an API or a worker refuses to start with a development value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cairn_chassis.settings import DevelopmentValuesRefused, ServiceSettings
from cairn_contracts.config import Settings as ContractsSettings
from cairn_notifications.config import Settings as NotificationsSettings

SERVICES = ["contracts", "payments", "notifications"]
REAL_SHAPE = {
    "database_url": "postgresql+asyncpg://u:p@db:5432/cairn",
    "jwt_secret": "a-secret-of-the-real-shape-32-bytes-or-more",
}


def _start(service: str, role: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / f"cairn-{service}"
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", service.upper()))}
    return subprocess.run(
        [str(script), role],
        capture_output=True,
        text=True,
        timeout=60,
        env=bare | env,
    )


@pytest.mark.parametrize("role", ["api", "worker"])
@pytest.mark.parametrize("service", SERVICES)
def test_a_bare_environment_with_a_one_letter_secret_refuses_to_start(
    service: str, role: str
) -> None:
    done = _start(service, role, {"CAIRN_JWT_SECRET": "a"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "CAIRN_JWT_SECRET is under 32 bytes" in done.stderr
    assert "DATABASE_URL is an embedded SQLite file" in done.stderr


def test_the_development_secret_is_refused_even_in_a_real_looking_deployment() -> None:
    settings = ServiceSettings(
        **REAL_SHAPE | {"jwt_secret": "cairn-local-development-secret-change-me"}
    )
    with pytest.raises(DevelopmentValuesRefused, match="development secret published"):
        settings.refuse_development_values()
    with pytest.raises(DevelopmentValuesRefused, match="under 32 bytes"):
        ServiceSettings(**REAL_SHAPE | {"jwt_previous_secret": "short"}).refuse_development_values()


def test_real_values_start_and_development_allows_anything() -> None:
    ServiceSettings(**REAL_SHAPE).refuse_development_values()
    ServiceSettings(jwt_secret="a", environment="development").refuse_development_values()


def test_each_service_refuses_its_own_development_values() -> None:
    contracts = ContractsSettings(**REAL_SHAPE | {"day_seconds": 2.0})
    assert contracts.development_values() == [
        "CONTRACTS_DAY_SECONDS is not a day (only tests and demos shorten it)"
    ]
    notifications = NotificationsSettings(**REAL_SHAPE | {"delivery_retry_window_s": 3600})
    found = " | ".join(notifications.development_values())
    for expected in (
        "local mail sink",
        "NOTIFICATIONS_FRONTEND_URL_PATTERN points at this machine",
        "NOTIFICATIONS_DEFAULT_FROM_ADDRESS is a .localhost address",
        "under 24 h",
    ):
        assert expected in found
