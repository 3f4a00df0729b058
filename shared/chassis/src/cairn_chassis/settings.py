"""The settings every Cairn service shares.

Service-specific settings subclass :class:`ServiceSettings` and set their own env prefix
(``CONTRACTS_``, ``PAYMENTS_``, ``NOTIFICATIONS_``). Settings that must agree across the
services (the broker, the JWT key) are read from ``CAIRN_*`` names so one value serves all.
"""

from __future__ import annotations

from typing import Annotated, Literal

from limits import parse
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: JWT secrets that ship with the repository (``make run``, the local system, the docs):
#: public, so never fit to verify a production token.
DEVELOPMENT_JWT_SECRETS = frozenset(
    {
        "cairn-local-development-secret-change-me",
        "local-system-secret-long-enough-for-hs256",
        "chaos-secret-long-enough-for-hs256-signatures",
    }
)
#: HS256 needs a key at least as long as its hash (RFC 7518 §3.2): 32 bytes.
MIN_JWT_SECRET_BYTES = 32


class DevelopmentValuesRefused(ValueError):
    """A production service was configured with values only fit for development."""


def _shared(name: str, *fallbacks: str) -> AliasChoices:
    """Env names for a setting shared by every service (``CAIRN_<name>`` first)."""
    return AliasChoices(f"CAIRN_{name}", *fallbacks)


class ServiceSettings(BaseSettings):
    """Base settings; each service subclasses it with ``env_prefix`` set."""

    model_config = SettingsConfigDict(env_prefix="CAIRN_", extra="ignore", populate_by_name=True)

    environment: Literal["production", "development"] = Field(
        "production",
        validation_alias=_shared("ENV"),
        description="production (the default, and the images'): the API and the worker "
        "refuse to start with a development value (a JWT secret shipped with Cairn or "
        "under 32 bytes, an embedded SQLite database, a local stand-in); development: "
        "`make run`, the tests and the dev overlay.",
    )
    service_name: str = "cairn"
    database_url: str = "sqlite+aiosqlite:///./.data/cairn.db"
    database_pool_size: int = 10

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=_shared("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    # Production Kafka supports the idempotent producer; the local tansu broker refuses it.
    kafka_enable_idempotence: bool = Field(
        False, validation_alias=_shared("KAFKA_ENABLE_IDEMPOTENCE")
    )
    # tansu answers a waiting fetch only when this runs out (DESIGN §9): keep it low locally.
    kafka_fetch_max_wait_ms: int = Field(500, validation_alias=_shared("KAFKA_FETCH_MAX_WAIT_MS"))
    kafka_session_timeout_ms: int = Field(
        10_000, validation_alias=_shared("KAFKA_SESSION_TIMEOUT_MS")
    )
    kafka_heartbeat_interval_ms: int = Field(
        3_000, validation_alias=_shared("KAFKA_HEARTBEAT_INTERVAL_MS")
    )
    # Local runs and tests create missing topics at start; production uses KafkaTopic CRs.
    kafka_create_topics: bool = Field(False, validation_alias=_shared("KAFKA_CREATE_TOPICS"))
    # Authentication to the brokers (Strimzi: SCRAM-SHA-512 over TLS, KafkaUser per service).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", validation_alias=_shared("KAFKA_SECURITY_PROTOCOL")
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", validation_alias=_shared("KAFKA_SASL_MECHANISM")
    )
    kafka_sasl_username: str | None = Field(None, validation_alias=_shared("KAFKA_SASL_USERNAME"))
    kafka_sasl_password: str | None = Field(None, validation_alias=_shared("KAFKA_SASL_PASSWORD"))
    kafka_ssl_cafile: str | None = Field(None, validation_alias=_shared("KAFKA_SSL_CAFILE"))
    kafka_max_poll_records: int = Field(100, validation_alias=_shared("KAFKA_MAX_POLL_RECORDS"))

    jwt_secret: str | None = Field(None, validation_alias=_shared("JWT_SECRET"))
    jwt_public_key: str | None = Field(None, validation_alias=_shared("JWT_PUBLIC_KEY"))
    jwt_private_key: str | None = Field(None, validation_alias=_shared("JWT_PRIVATE_KEY"))
    # Key rotation: tokens signed with the previous key are still accepted while these
    # are set (DESIGN §7 leaves rotation open; docs/operations.md has the runbook).
    jwt_previous_secret: str | None = Field(
        None,
        validation_alias=_shared("JWT_PREVIOUS_SECRET"),
        description="During a rotation, the HS256 secret tokens were signed with before; "
        "accepted after the current key. Unset it once old tokens have expired.",
    )
    jwt_previous_public_key: str | None = Field(
        None,
        validation_alias=_shared("JWT_PREVIOUS_PUBLIC_KEY"),
        description="During a rotation, the RS256 public key (PEM) tokens were signed with "
        "before; accepted after the current key. Unset it once old tokens have expired.",
    )
    jwt_audience: str | None = Field(None, validation_alias=_shared("JWT_AUDIENCE"))
    jwt_issuer: str | None = Field(None, validation_alias=_shared("JWT_ISSUER"))
    jwt_jwks_url: str | None = Field(
        None,
        validation_alias=_shared("JWT_JWKS_URL"),
        description="The identity provider's JWKS (e.g. `https://idp.example.com/.well-known/"
        "jwks.json`): tokens are verified with the key their `kid` names, fetched and "
        "cached, and a new `kid` (a rotation) is fetched when first seen. Set "
        "CAIRN_JWT_ISSUER and CAIRN_JWT_AUDIENCE with it (required in production).",
    )
    jwt_jwks_cache_s: int = Field(
        300,
        ge=0,
        validation_alias=_shared("JWT_JWKS_CACHE_S"),
        description="How long fetched JWKS keys are used before the set is fetched again.",
    )
    jwt_algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["RS256"],
        validation_alias=_shared("JWT_ALGORITHMS"),
        description="Algorithms a JWKS key may sign with (comma-separated, e.g. "
        "`RS256,ES256`); never `none` or an HMAC one.",
    )
    jwt_claim_sub: str = Field(
        "sub",
        validation_alias=_shared("JWT_CLAIM_SUB"),
        description="Claim naming the user (a dotted path reaches into an object claim).",
    )
    jwt_claim_marketplace: str = Field(
        "marketplace",
        validation_alias=_shared("JWT_CLAIM_MARKETPLACE"),
        description="Claim naming the user's marketplace, e.g. `https://cairn/marketplace` "
        "or `app_metadata.marketplace`.",
    )
    jwt_claim_role: str = Field(
        "role",
        validation_alias=_shared("JWT_CLAIM_ROLE"),
        description="Claim holding the role (customer, freelancer or operator), or a list "
        "holding exactly one of them (e.g. `realm_access.roles`).",
    )
    jwt_claim_email: str = Field(
        "email", validation_alias=_shared("JWT_CLAIM_EMAIL"), description="Claim of the email."
    )
    jwt_claim_name: str = Field(
        "name", validation_alias=_shared("JWT_CLAIM_NAME"), description="Claim of the name."
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_shared("LOG_LEVEL")
    )
    log_json: bool = Field(True, validation_alias=_shared("LOG_JSON"))

    http_max_body_bytes: int = Field(
        1_048_576,
        ge=1024,
        validation_alias=_shared("HTTP_MAX_BODY_BYTES"),
        description="Largest request body the APIs read (413 `request.too_large` beyond).",
    )
    http_max_authorization_bytes: int = Field(
        8192,
        ge=256,
        validation_alias=_shared("HTTP_MAX_AUTHORIZATION_BYTES"),
        description="Longest Authorization header the APIs accept (431 "
        "`request.header_too_large` beyond).",
    )

    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_shared("CORS_ALLOWED_ORIGINS"),
        description="Browser origins allowed to call the APIs (comma-separated, e.g. "
        "`https://app.example.com`); empty = CORS off (no CORS headers).",
    )
    rate_limit_per_ip: str = Field(
        "",
        validation_alias=_shared("RATE_LIMIT_PER_IP"),
        description="Requests per client IP, e.g. `1200/minute` (429 `request.rate_limited` "
        "beyond); empty = off. Counted per API process: a gateway limits better.",
    )
    rate_limit_per_user: str = Field(
        "",
        validation_alias=_shared("RATE_LIMIT_PER_USER"),
        description="Requests per signed-in user, e.g. `600/minute`; empty = off. Counted "
        "per API process: a gateway limits better.",
    )
    http_public_docs: bool = Field(
        True,
        validation_alias=_shared("HTTP_PUBLIC_DOCS"),
        description="Serve /docs, /redoc and /openapi.json on the API port (`openapi` "
        "prints the document either way).",
    )
    http_public_metrics: bool = Field(
        False,
        validation_alias=_shared("HTTP_PUBLIC_METRICS"),
        description="Also serve /metrics on the API port (off: Prometheus scrapes the "
        "internal port, ``<SVC>_INTERNAL_PORT``, which front ends cannot reach).",
    )

    @field_validator("cors_allowed_origins", "jwt_algorithms", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("rate_limit_per_ip", "rate_limit_per_user")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        if value:
            parse(value)  # raises ValueError on what is not a rate ("600/minute")
        return value

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # The internal port, on ``api_host``: /metrics for Prometheus, and /healthz and /readyz
    # (a worker's only HTTP endpoints; an API answers them on its own port too). 0 = off.
    internal_port: int = 0

    # Consumer retries: attempts in-process before a message goes to the dead-letter topic.
    consumer_max_attempts: int = 5
    consumer_backoff_initial_s: float = 0.1
    consumer_backoff_max_s: float = 5.0

    outbox_batch_size: int = 200
    outbox_poll_interval_s: float = 0.02

    # Retention of the rows that only guard against duplicates (cairn_chassis.retention).
    retention_sweep_interval_s: float = Field(
        3600.0,
        validation_alias=_shared("RETENTION_SWEEP_INTERVAL_S"),
        description="How often the worker purges expired rows (0 = never).",
    )
    retention_outbox_days: int = Field(
        7,
        ge=0,
        validation_alias=_shared("RETENTION_OUTBOX_DAYS"),
        description="Published outbox rows are kept this long (0 = forever); unpublished "
        "rows are never purged.",
    )
    retention_inbox_days: int = Field(
        45,
        ge=0,
        validation_alias=_shared("RETENTION_INBOX_DAYS"),
        description="Processed-event (inbox) rows are kept this long (0 = forever); must "
        "exceed the topics' retention, or a replay from the start would apply events twice.",
    )
    retention_idempotency_key_hours: int = Field(
        168,
        ge=0,
        validation_alias=_shared("RETENTION_IDEMPOTENCY_KEY_HOURS"),
        description="Stored answers to Idempotency-Keys are kept this long (0 = forever); "
        "a retry after that runs the command again.",
    )

    def development_values(self) -> list[str]:
        """Every setting holding a value only fit for development, in words ([] = none).

        Services extend it with their own (``super().development_values() + [...]``)."""
        prefix = self.model_config.get("env_prefix", "CAIRN_")
        found: list[str] = []
        for name, secret in (
            ("CAIRN_JWT_SECRET", self.jwt_secret),
            ("CAIRN_JWT_PREVIOUS_SECRET", self.jwt_previous_secret),
        ):
            if secret is None:
                continue
            if secret in DEVELOPMENT_JWT_SECRETS:
                found.append(f"{name} is a development secret published with Cairn")
            elif len(secret.encode()) < MIN_JWT_SECRET_BYTES:
                found.append(f"{name} is under {MIN_JWT_SECRET_BYTES} bytes")
        if self.is_sqlite:
            found.append(f"{prefix}DATABASE_URL is an embedded SQLite file (use PostgreSQL)")
        if self.jwt_jwks_url and not (self.jwt_issuer and self.jwt_audience):
            # Any application of the same identity provider could sign in otherwise.
            found.append(
                "CAIRN_JWT_JWKS_URL is set without CAIRN_JWT_ISSUER and CAIRN_JWT_AUDIENCE"
            )
        return found

    def refuse_development_values(self) -> None:
        """Raise :class:`DevelopmentValuesRefused` if this is production and any setting
        holds a development value (called when an API or a worker starts)."""
        if self.environment != "production":
            return
        found = self.development_values()
        if found:
            raise DevelopmentValuesRefused(
                "refusing to start with development values in production (CAIRN_ENV="
                "production): " + "; ".join(found) + ". Set real values, or "
                "CAIRN_ENV=development for a local run."
            )

    @property
    def is_sqlite(self) -> bool:
        """True when the service runs on an embedded SQLite file."""
        return self.database_url.startswith("sqlite")
