"""The notifications service's settings (env prefix ``NOTIFICATIONS_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from cairn_chassis.health import locate_migrations
from cairn_chassis.settings import ServiceSettings
from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_MAIL_SINK_PORT = 1025
_PRODUCTION_RETRY_WINDOW_S = 86_400.0


#: This service's Alembic migrations: `migrate` applies them, /readyz waits for their head.
MIGRATIONS: Path = locate_migrations(Path(__file__).resolve().parent)


class Settings(ServiceSettings):
    """Everything the notifications service reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="NOTIFICATIONS_", extra="ignore", populate_by_name=True
    )

    service_name: str = "notifications"
    database_url: str = "sqlite+aiosqlite:///./.data/notifications.db"
    api_port: int = 8003

    consumer_group: str = Field(
        "notifications", description="Kafka consumer group of the event consumers."
    )

    # SMTP relay the emails go through (the local aiosmtpd sink by default).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_starttls: bool | None = Field(
        None,
        description="STARTTLS: true = required, false = never, unset = if the server offers it.",
    )
    smtp_use_tls: bool = Field(False, description="Implicit TLS (SMTPS, usually port 465).")
    smtp_cert_bundle: str | None = Field(
        None, description="CA file to verify the SMTP server's certificate (private CAs)."
    )
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_s: float = Field(
        30.0, description="Per SMTP command; a whole send is cut off after three times this."
    )
    smtp_envelope_from: str | None = Field(
        None, description="MAIL FROM (bounce address); default: the marketplace's from-address."
    )

    # Links in emails: placeholders {marketplace_id}, {contract_id}, {milestone_id}, {role}.
    frontend_url_pattern: str = "http://localhost:3000/{marketplace_id}/contracts/{contract_id}"

    operator_alert_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Fallback for operator alerts (disputes, holding limits, chargebacks, "
        "failed emails) of a marketplace whose branding has not arrived; a marketplace's own "
        "alerts go to its support address. Empty = the default support address.",
    )

    # Branding used until a marketplace's settings have arrived.
    default_display_name: str = "Cairn"
    default_from_address: str = "no-reply@cairn.localhost"
    default_support_address: str = "support@cairn.localhost"
    default_accent_colour: str = "#333333"
    default_logo_url: str | None = None

    delivery_retry_window_s: float = Field(
        172_800.0,
        ge=60,
        description="How long an email is retried (4xx answers, dropped connections, an "
        "outage) before it is marked failed, from when it was queued or re-queued: no SMTP "
        "outage shorter than this loses an email. 48 h by default (at least 24 h in "
        "production); `make run` uses 1 h.",
    )
    delivery_backoff_initial_s: float = Field(
        5.0, gt=0, description="First pause before an email is retried; it doubles each time."
    )
    delivery_backoff_max_s: float = Field(
        1800.0, gt=0, description="Longest pause between retries of an email."
    )
    delivery_concurrency: int = Field(4, ge=1, description="Emails sent at the same time.")
    delivery_poll_interval_s: float = 0.5
    delivery_lease_s: float = Field(
        150.0,
        description="How long a claimed email is left to its sender before another sender "
        "may retry it (a sender that died mid-send); must exceed a whole send.",
    )

    # Events older than this (e.g. a new deployment replaying the topics from the start)
    # still update the directory but send no email: nobody wants last month's reminders.
    email_max_event_age_hours: float = 72.0

    @model_validator(mode="after")
    def _check(self) -> Settings:
        try:
            self.frontend_url_pattern.format(
                marketplace_id="m", contract_id="c", milestone_id="ms", role="customer"
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                "frontend_url_pattern may only use {marketplace_id}, {contract_id}, "
                f"{{milestone_id}} and {{role}}: {exc!r}"
            ) from exc
        if self.delivery_lease_s <= self.smtp_send_deadline_s:
            raise ValueError(
                f"delivery_lease_s ({self.delivery_lease_s}) must exceed a whole send "
                f"(3 x smtp_timeout_s = {self.smtp_send_deadline_s})"
            )
        return self

    def development_values(self) -> list[str]:
        """The chassis' development values, and the local mail sink and example links."""
        found = super().development_values()
        if self.smtp_host in _LOCAL_HOSTS and self.smtp_port == _MAIL_SINK_PORT:
            found.append("NOTIFICATIONS_SMTP_HOST/_PORT are the local mail sink's")
        if any(host in self.frontend_url_pattern for host in _LOCAL_HOSTS):
            found.append("NOTIFICATIONS_FRONTEND_URL_PATTERN points at this machine")
        for name in ("default_from_address", "default_support_address"):
            if str(getattr(self, name)).endswith(".localhost"):
                found.append(f"NOTIFICATIONS_{name.upper()} is a .localhost address")
        if self.delivery_retry_window_s < _PRODUCTION_RETRY_WINDOW_S:
            found.append(
                "NOTIFICATIONS_DELIVERY_RETRY_WINDOW_S is under 24 h: a night's SMTP outage "
                "would lose emails"
            )
        return found

    @property
    def smtp_send_deadline_s(self) -> float:
        """The longest one email's SMTP conversation may take."""
        return self.smtp_timeout_s * 3

    @field_validator("operator_alert_addresses", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


def load_settings() -> Settings:
    """Settings from the environment."""
    return Settings()
