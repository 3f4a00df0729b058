"""The payments service's settings (env prefix ``PAYMENTS_``)."""

from __future__ import annotations

from cairn_chassis.settings import ServiceSettings
from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

LOCALSTRIPE_API_BASE = "http://127.0.0.1:8420"


class Settings(ServiceSettings):
    """Everything the payments API and worker read from the environment."""

    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore", populate_by_name=True)

    service_name: str = "payments"
    database_url: str = "sqlite+aiosqlite:///./.data/payments.db"
    api_port: int = 8002

    # Against real Stripe set STRIPE_API_KEY (or PAYMENTS_STRIPE_API_KEY) and leave the base
    # unset; the default key and base point at the local localstripe.
    stripe_api_key: str = Field(
        "sk_test_cairn_localstripe",
        validation_alias=AliasChoices("PAYMENTS_STRIPE_API_KEY", "STRIPE_API_KEY"),
    )
    stripe_api_base: str | None = Field(
        LOCALSTRIPE_API_BASE,
        validation_alias=AliasChoices("PAYMENTS_STRIPE_API_BASE", "STRIPE_API_BASE"),
    )
    stripe_webhook_secret: str = Field(
        "whsec_cairn_local",
        validation_alias=AliasChoices("PAYMENTS_STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET"),
    )
    stripe_webhook_tolerance_s: int = 300
    stripe_request_timeout_s: float = 10.0
    # Never retried blindly: an unknown outcome goes to reconciling (DESIGN §8).
    stripe_max_network_retries: int = 0
    # Country of new connected accounts (Custom accounts need one).
    stripe_account_country: str = "US"

    reconcile_interval_s: float = 5.0
    # An operation left "started" this long (a crash mid-call) is treated as unknown.
    reconcile_stale_after_s: float = 30.0
    webhook_poll_interval_s: float = 0.5

    @property
    def uses_real_stripe(self) -> bool:
        """True when no API base override is set (the Stripe API itself)."""
        return not self.stripe_api_base
