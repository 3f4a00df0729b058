"""The contracts service's settings (env prefix ``CONTRACTS_``)."""

from __future__ import annotations

from pathlib import Path

from cairn_chassis.health import locate_migrations
from cairn_chassis.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict

#: This service's Alembic migrations: `migrate` applies them, /readyz waits for their head.
MIGRATIONS: Path = locate_migrations(Path(__file__).resolve().parent)


class Settings(ServiceSettings):
    """Everything the contracts service reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="CONTRACTS_", extra="ignore", populate_by_name=True
    )

    service_name: str = "contracts"
    database_url: str = "sqlite+aiosqlite:///./.data/contracts.db"
    api_port: int = 8001
    # Reminders go out this long before auto-release and the holding limit (half of it
    # before a refund-request deadline).
    reminder_days_before: int = 2
    # Length of a settings "day" in seconds: 86,400 in production; tests and demos shorten
    # it to watch deadlines fire through the real processes.
    day_seconds: float = 86_400.0
    timer_poll_interval_s: float = 1.0
    page_size_max: int = 100

    def development_values(self) -> list[str]:
        """The chassis' development values, and a shortened settings day."""
        found = super().development_values()
        if self.day_seconds != 86_400.0:
            found.append("CONTRACTS_DAY_SECONDS is not a day (only tests and demos shorten it)")
        return found


def load_settings() -> Settings:
    """Settings from the environment."""
    return Settings()
