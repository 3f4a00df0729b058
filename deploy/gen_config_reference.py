"""The configuration reference of docs/operations.md, generated from the settings classes.

    uv run --no-sync python deploy/gen_config_reference.py           # print the section
    uv run --no-sync python deploy/gen_config_reference.py --write   # update the doc
    uv run --no-sync python deploy/gen_config_reference.py --check   # fail if it is stale

For every setting a service reads it gives the environment variable, the type, the
default and what it means (the field's description, or the comment above it in the
settings class), and where the Kustomize base sets it: a key of a ConfigMap, a key of a
Secret, or nowhere (the default applies). ``deploy/tests`` import :func:`settings_of`
and :func:`deploy_sources` to check that every setting has its place in the base.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "operations.md"
BASE = ROOT / "deploy" / "base"
BEGIN = "<!-- BEGIN GENERATED: configuration reference (deploy/gen_config_reference.py) -->"
END = "<!-- END GENERATED: configuration reference -->"
SERVICES = ("contracts", "payments", "notifications")

# Settings the base leaves unset on purpose: the default (unset) is right, and an empty
# ConfigMap entry would not mean the same thing. deploy/tests/test_wiring.py holds the base
# to this list.
NOT_SET = {
    "CAIRN_JWT_PRIVATE_KEY": "only `dev-token` mints tokens; the services verify with the "
    "secret or the public key",
    "CAIRN_JWT_AUDIENCE": "an empty value would demand aud = ''; set it in an overlay if "
    "your identity provider issues one",
    "CAIRN_JWT_ISSUER": "an empty value would demand iss = ''; set it in an overlay if your "
    "identity provider issues one",
    "CAIRN_JWT_JWKS_URL": "the base verifies with the key in the Secret cairn-jwt; an overlay "
    "that uses your identity provider's JWKS sets it (with the issuer and audience)",
    "NOTIFICATIONS_SMTP_STARTTLS": "unset means STARTTLS whenever the relay offers it; an "
    "empty value is not a boolean",
    "NOTIFICATIONS_SMTP_CERT_BUNDLE": "the image's CA store applies; for a private CA, mount "
    "its file and name it in an overlay",
    "NOTIFICATIONS_DEFAULT_LOGO_URL": "no logo; an empty URL would render a broken image",
    "CONTRACTS_DAY_SECONDS": "a day is 86,400 s in production; only tests and demos shorten it",
}

# What a setting means, for fields whose class gives neither a description nor a comment.
# (A description in the settings class wins; prefer adding one there.)
NOTES = {
    "service_name": "Name in logs and the Kafka client id.",
    "database_url": "SQLAlchemy async URL of the service's own database, "
    "`postgresql+asyncpg://user:password@host:5432/db`.",
    "database_pool_size": "Database connections per process.",
    "kafka_bootstrap_servers": "Kafka brokers, `host:port[,host:port]`.",
    "kafka_session_timeout_ms": "Consumer group session timeout.",
    "kafka_heartbeat_interval_ms": "Consumer heartbeat interval (below a third of the session "
    "timeout).",
    "kafka_max_poll_records": "Records fetched per poll.",
    "jwt_secret": "HS256 key that verifies bearer tokens.",
    "jwt_public_key": "RS256 public key (PEM) that verifies bearer tokens; wins over the secret.",
    "jwt_private_key": "RS256 private key; only `dev-token` uses it.",
    "jwt_audience": "Required `aud` claim; unset = not checked.",
    "jwt_issuer": "Required `iss` claim; unset = not checked.",
    "log_level": "Log level.",
    "log_json": "One JSON object per log line.",
    "api_host": "Interface the API listens on.",
    "api_port": "Port the API listens on.",
    "consumer_backoff_initial_s": "First pause between in-process retries of an event.",
    "consumer_backoff_max_s": "Longest pause between in-process retries of an event.",
    "outbox_batch_size": "Outbox rows a relay claims at once.",
    "outbox_poll_interval_s": "How often an idle outbox relay looks for new rows.",
    "timer_poll_interval_s": "How often the worker looks for due timers.",
    "page_size_max": "Largest page a list endpoint returns.",
    "stripe_api_base": "Stripe API base URL; unset or empty = Stripe itself (with a real key).",
    "stripe_webhook_secret": "Signing secret of the Stripe webhook endpoint (`whsec_…`).",
    "stripe_webhook_tolerance_s": "Oldest webhook signature timestamp accepted.",
    "stripe_request_timeout_s": "Timeout of one Stripe request.",
    "reconcile_interval_s": "How often the reconciler settles escrows in `reconciling`.",
    "webhook_poll_interval_s": "How often the worker picks up stored Stripe webhooks.",
    "smtp_port": "SMTP relay port (587 submission, 465 SMTPS, 25).",
    "smtp_username": "SMTP login; unset = no authentication.",
    "smtp_password": "SMTP password.",
    "default_from_address": "Sender address until a marketplace's branding arrives.",
    "default_support_address": "Support address until a marketplace's branding arrives.",
    "default_accent_colour": "Accent colour until a marketplace's branding arrives.",
    "default_logo_url": "Logo until a marketplace's branding arrives.",
    "delivery_backoff_initial_s": "First pause before an email is retried.",
    "delivery_backoff_max_s": "Longest pause between retries of an email.",
    "delivery_poll_interval_s": "How often the sender looks for due emails.",
}


@dataclass(frozen=True)
class Setting:
    """One environment variable a service reads."""

    env: str
    field: str
    type: str
    default: str
    meaning: str


def settings_class(service: str) -> type[BaseSettings]:
    """The ``Settings`` class of ``cairn_<service>.config``."""
    module = __import__(f"cairn_{service}.config", fromlist=["Settings"])
    cls: type[BaseSettings] = module.Settings
    return cls


def _comments(cls: type) -> dict[str, str]:
    """The comment lines right above each field assignment in ``cls`` and its bases."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseSettings)):
            continue
        if klass.__module__.startswith("pydantic"):
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        pending: list[str] = []
        for line in lines:
            stripped = line.strip()
            if stripped.startswith("#"):
                pending.append(stripped.lstrip("#").strip())
                continue
            match = re.match(r"^\s{4}([a-z_][a-z0-9_]*)\s*:", line)
            if match and pending:
                found[match.group(1)] = " ".join(pending)
            if stripped:
                pending = []
    return found


def _env_name(cls: type[BaseSettings], name: str, alias: Any) -> str:
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        return str(first).upper()
    if isinstance(alias, str):
        return alias.upper()
    prefix = str(cls.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper()


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    if text is None:
        text = str(annotation).replace("typing.", "")
    text = re.sub(r"Annotated\[(.*?), .*\]$", r"\1", text)
    text = text.replace("NoneType", "None")
    if text.startswith("Literal["):
        text = text[len("Literal[") : -1].replace("'", "").replace(", ", " · ")
    return text


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list) and not value:
        return "empty"
    return str(value)


def settings_of(service: str) -> list[Setting]:
    """Every setting of ``service``, in the class's order."""
    cls = settings_class(service)
    comments = _comments(cls)
    out = []
    for name, field in cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        meaning = field.description or comments.get(name) or NOTES.get(name, "")
        out.append(
            Setting(
                env=_env_name(cls, name, field.validation_alias),
                field=name,
                type=_type_name(field.annotation),
                default=_default(default),
                meaning=meaning,
            )
        )
    return out


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def deploy_sources(service: str) -> dict[str, str]:
    """Env name → where the base sets it for ``service``'s API and worker pods."""
    where: dict[str, str] = {}
    for path in [BASE / "common" / "configmap.yaml", BASE / service / "configmap.yaml"]:
        for doc in _docs(path):
            if doc.get("kind") == "ConfigMap":
                for key in doc.get("data", {}):
                    where[key] = f"ConfigMap `{doc['metadata']['name']}`"
    for doc in _docs(BASE / service / "api.yaml") + _docs(BASE / service / "worker.yaml"):
        if doc.get("kind") != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    optional = " (optional)" if ref.get("optional") else ""
                    where[env["name"]] = f"Secret `{ref['name']}` key `{ref['key']}`{optional}"
                elif "value" in env:
                    where[env["name"]] = f"Deployment `{doc['metadata']['name']}`"
    return where


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows: list[Setting], where: dict[str, str]) -> list[str]:
    out = ["| variable | type | default | set in the base | meaning |", "|---|---|---|---|---|"]
    for s in rows:
        default = f"`{s.default}`" if s.default not in ("unset", "empty") else s.default
        place = where.get(s.env) or (f"not set: {NOT_SET[s.env]}" if s.env in NOT_SET else "—")
        out.append(
            f"| `{s.env}` | {_cell(s.type)} | {_cell(default)} | {_cell(place)} "
            f"| {_cell(s.meaning)} |"
        )
    return out


def render() -> str:
    """The generated section (between the markers)."""
    parts = [
        BEGIN,
        "",
        "Every variable each service reads, from its settings class; *set in the base* says",
        "which ConfigMap or Secret provides it.",
        "",
        "#### Shared by all three services (`CAIRN_*`)",
        "",
    ]
    shared = [s for s in settings_of(SERVICES[0]) if s.env.startswith("CAIRN_")]
    parts += _table(shared, deploy_sources(SERVICES[0]))
    for service in SERVICES:
        own = [s for s in settings_of(service) if not s.env.startswith("CAIRN_")]
        parts += ["", f"#### {service}", ""]
        parts += _table(own, deploy_sources(service))
    parts += ["", END]
    return "\n".join(parts)


def _replace(doc: str, section: str) -> str:
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    return doc[:start] + section + doc[end:]


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the configuration reference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="update docs/operations.md")
    mode.add_argument("--check", action="store_true", help="fail if docs/operations.md is stale")
    args = parser.parse_args(argv)
    section = render()
    if args.write:
        DOC.write_text(_replace(DOC.read_text(), section))
        return 0
    if args.check:
        if _replace(DOC.read_text(), section) != DOC.read_text():
            print(
                "docs/operations.md: the configuration reference is stale; run "
                "`uv run --no-sync python deploy/gen_config_reference.py --write`",
                file=sys.stderr,
            )
            return 1
        return 0
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
