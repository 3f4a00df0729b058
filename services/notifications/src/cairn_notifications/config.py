"""The notifications service's settings (env prefix ``NOTIFICATIONS_``)."""

from __future__ import annotations

from typing import Annotated

from cairn_chassis.settings import ServiceSettings
from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict


class Settings(ServiceSettings):
    """Everything the notifications service reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="NOTIFICATIONS_", extra="ignore", populate_by_name=True
    )

    service_name: str = "notifications"
    database_url: str = "sqlite+aiosqlite:///./.data/notifications.db"
    api_port: int = 8003

    # SMTP relay the emails go through (the local aiosmtpd sink by default).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_starttls: bool = Field(
        False, description="Upgrade the connection with STARTTLS (required when true)."
    )
    smtp_use_tls: bool = Field(False, description="Implicit TLS (SMTPS, usually port 465).")
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_s: float = 30.0
    smtp_envelope_from: str | None = Field(
        None, description="MAIL FROM (bounce address); default: the marketplace's from-address."
    )

    # Links in emails: placeholders {marketplace_id}, {contract_id}, {milestone_id}, {role}.
    frontend_url_pattern: str = "http://localhost:3000/{marketplace_id}/contracts/{contract_id}"

    # Operators told about disputes and holding limits; empty = the marketplace's support
    # address (the marketplace's own operators).
    operator_alert_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Branding used until a marketplace's settings have arrived.
    default_display_name: str = "Cairn"
    default_from_address: str = "no-reply@cairn.localhost"
    default_support_address: str = "support@cairn.localhost"
    default_accent_colour: str = "#333333"
    default_logo_url: str | None = None

    # Delivery retries: 4xx answers and connection failures back off exponentially.
    delivery_max_attempts: int = 10
    delivery_backoff_initial_s: float = 5.0
    delivery_backoff_max_s: float = 1800.0
    delivery_batch_size: int = 20
    delivery_concurrency: int = 4
    delivery_poll_interval_s: float = 0.5
    delivery_lease_s: float = 120.0

    # Worker metrics (Prometheus) port; 0 = off. The API's /metrics also shows delivery counts.
    worker_metrics_port: int = 0

    @field_validator("operator_alert_addresses", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


def load_settings() -> Settings:
    """Settings from the environment."""
    return Settings()
