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
    # Escrow holding limits (Stripe holds funds ~90 days, 2 years for US accounts).
    holding_limit_days: int = 90
    holding_limit_days_us: int = 730
    reminder_days_before: int = 2
    timer_poll_interval_s: float = 1.0
    page_size_max: int = 100


def load_settings() -> Settings:
    """Settings from the environment."""
    return Settings()
