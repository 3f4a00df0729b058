"""The contracts service's settings (env prefix ``CONTRACTS_``)."""

from __future__ import annotations

from cairn_chassis.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


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


def load_settings() -> Settings:
    """Settings from the environment."""
    return Settings()
