"""The payments service's settings (env prefix ``PAYMENTS_``)."""

from __future__ import annotations

from pathlib import Path

from cairn_chassis.health import locate_migrations
from cairn_chassis.settings import ServiceSettings
from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

LOCALSTRIPE_API_BASE = "http://127.0.0.1:8420"
LOCAL_API_KEY = "sk_test_cairn_localstripe"


#: This service's Alembic migrations: `migrate` applies them, /readyz waits for their head.
MIGRATIONS: Path = locate_migrations(Path(__file__).resolve().parent)


class Settings(ServiceSettings):
    """Everything the payments API and worker read from the environment."""

    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore", populate_by_name=True)

    service_name: str = "payments"
    database_url: str = "sqlite+aiosqlite:///./.data/payments.db"
    api_port: int = 8002

    # With a real key (STRIPE_API_KEY or PAYMENTS_STRIPE_API_KEY) and no base, the service
    # talks to Stripe; with the default local key and no base, to localstripe on 8420.
    # An explicit base always wins (localstripe on another port, stripe-mock...).
    stripe_api_key: str = Field(
        LOCAL_API_KEY,
        validation_alias=AliasChoices("PAYMENTS_STRIPE_API_KEY", "STRIPE_API_KEY"),
    )
    stripe_api_base: str | None = Field(
        None,
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
    account_recheck_interval_s: float = Field(
        300.0,
        gt=0,
        description="How often the reconciler asks Stripe whether a connected account that "
        "a release waits for can receive payouts now, in case its account.updated webhook "
        "was lost.",
    )
    owed_call_grace_s: float = Field(
        60.0,
        gt=0,
        description="A Stripe call owed by a commit (a stale charge's refund) that has not "
        "finished after this long is made by the reconciler, with the same idempotency key; "
        "until then it is left to the process that owes it.",
    )
    webhook_poll_interval_s: float = 0.5
    retention_stripe_event_days: int = Field(
        30,
        ge=0,
        description="Processed Stripe webhook events are kept this long (0 = forever): "
        "Stripe retries a delivery for up to three days, and the stored ids dedupe a retry.",
    )

    @model_validator(mode="after")
    def _owed_calls_wait_for_their_owner(self) -> Settings:
        longest_call = self.stripe_request_timeout_s * (1 + self.stripe_max_network_retries)
        if self.owed_call_grace_s <= longest_call:
            raise ValueError(
                f"owed_call_grace_s ({self.owed_call_grace_s}) must be longer than a Stripe "
                f"call can take ({longest_call} s): the reconciler would race its owner"
            )
        return self

    @model_validator(mode="after")
    def _local_stripe_by_default(self) -> Settings:
        if not self.stripe_api_base and self.stripe_api_key == LOCAL_API_KEY:
            self.stripe_api_base = LOCALSTRIPE_API_BASE
        return self

    @property
    def uses_real_stripe(self) -> bool:
        """True when calls go to the Stripe API itself (no base override)."""
        return not self.stripe_api_base
