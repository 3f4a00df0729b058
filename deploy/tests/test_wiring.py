"""What the code does and what the manifests grant agree.

- Every topic a service subscribes to or publishes on (read from the code: its broker's
  subscribers, the events it constructs, its dead-letter topic) has a KafkaTopic, and
  the service's KafkaUser may read or write exactly those topics and no others.
- Each worker scales on its own consumer group's lag, never past the partition count.
- Every setting a service reads has an entry in a ConfigMap or a Secret reference in the
  base, or is deliberately left unset for a stated reason, and the base's values are
  accepted by the settings classes.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest
from cairn_chassis.db import Database
from cairn_schemas import topics
from cairn_schemas.registry import EVENT_TYPES
from deploy_support import ROOT, SERVICES, Rendered
from faststream.kafka import KafkaBroker
from gen_config_reference import NOT_SET, deploy_sources, settings_class, settings_of

# Settings in the base that no service reads yet (none: keep it that way).
PENDING: set[str] = set()


@cache
def broker_of(service: str) -> KafkaBroker:
    """The service's broker as its worker builds it (nothing connects)."""
    settings = settings_class(service)()
    if service == "contracts":
        from cairn_contracts.entrypoints.consumers import build_broker as contracts_broker

        return contracts_broker(settings, Database("sqlite+aiosqlite:///:memory:"))  # type: ignore[arg-type]
    if service == "payments":
        from cairn_payments.entrypoints.consumers import build_broker as payments_broker

        return payments_broker(settings)  # type: ignore[arg-type]
    from cairn_notifications.entrypoints.consumers import build_broker as notifications_broker

    return notifications_broker(settings, Database("sqlite+aiosqlite:///:memory:"))  # type: ignore[arg-type]


def consumer_group(service: str) -> str:
    (group,) = {s.group_id for s in broker_of(service).subscribers}
    return str(group)


def subscribed(service: str) -> set[str]:
    return {t for s in broker_of(service).subscribers for t in s.topic_names}


def published(service: str) -> set[str]:
    """Topics of the events the service's code constructs (they reach Kafka through its
    outbox), the publishers its broker declares, and its dead-letter topic."""
    by_class = {cls.__name__: cls.topic for cls in EVENT_TYPES.values()}
    found = {topics.dead_letter(consumer_group(service))}
    found |= {p.topic for p in broker_of(service).publishers}
    for path in (ROOT / "services" / service / "src").rglob("*.py"):
        text = path.read_text()
        found |= {topic for name, topic in by_class.items() if re.search(rf"\b{name}\(", text)}
    return found


def acls(r: Rendered, service: str) -> dict[tuple[str, str], set[str]]:
    """(resource type, name) → operations allowed to the KafkaUser ``cairn-<service>``."""
    user = r.get("KafkaUser", f"cairn-{service}")
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    out: dict[tuple[str, str], set[str]] = {}
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl.get("type", "allow") == "allow"
        assert acl["resource"]["patternType"] == "literal", "no wildcard grants"
        key = (acl["resource"]["type"], acl["resource"]["name"])
        out.setdefault(key, set()).update(acl["operations"])
    return out


def kafka_topics(r: Rendered) -> dict[str, dict[str, Any]]:
    return {t["spec"]["topicName"]: t["spec"] for t in r.of_kind("KafkaTopic")}


def test_the_code_reading_is_not_vacuous() -> None:
    assert subscribed("contracts") == {topics.PAYMENTS}
    assert subscribed("payments") == {topics.CONTRACTS}
    assert published("contracts") >= {topics.CONTRACTS, topics.MARKETPLACES}
    assert published("payments") >= {topics.PAYMENTS}
    assert published("notifications") >= {topics.NOTIFICATIONS}
    assert [consumer_group(s) for s in SERVICES] == list(SERVICES)


def test_every_topic_is_a_kafka_topic_and_no_other(rendered: dict[str, Rendered]) -> None:
    expected = set(topics.ALL) | {topics.dead_letter(consumer_group(s)) for s in SERVICES}
    for r in rendered.values():
        declared = kafka_topics(r)
        assert set(declared) == expected, r.name
        for name, spec in declared.items():
            compacted = spec["config"].get("cleanup.policy") == "compact"
            assert compacted == (name in topics.COMPACTED), name
            if compacted:
                assert "retention.ms" not in spec["config"], name
            else:
                assert int(spec["config"]["retention.ms"]) >= 7 * 24 * 3600 * 1000, name
    for spec in kafka_topics(rendered["base"]).values():
        assert spec["replicas"] == 3
        assert spec["config"]["min.insync.replicas"] == "2"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_may_use_exactly_its_own_topics(
    rendered: dict[str, Rendered], service: str
) -> None:
    for r in rendered.values():
        granted = acls(r, service)
        declared = set(kafka_topics(r))
        reads = {name for (kind, name), ops in granted.items() if kind == "topic" and "Read" in ops}
        writes = {
            name for (kind, name), ops in granted.items() if kind == "topic" and "Write" in ops
        }
        assert reads == subscribed(service), r.name
        assert writes == published(service), r.name
        assert (reads | writes) <= declared
        assert {name for kind, name in granted if kind == "topic"} == reads | writes
        assert {name for kind, name in granted if kind == "group"} == {consumer_group(service)}
        assert "Read" in granted[("group", consumer_group(service))]
        assert not any(kind in ("cluster", "transactionalId") for kind, _ in granted)


def test_the_operator_may_read_dead_letters_and_replay_them_and_nothing_else(
    rendered: dict[str, Rendered],
) -> None:
    # What `cairn-<svc> dead-letters` needs: read every dead-letter topic (no group),
    # write back to every topic a consumer reads, except the compacted one it refuses.
    dead_letter_topics = {topics.dead_letter(consumer_group(s)) for s in SERVICES}
    replay_targets = set().union(*(subscribed(s) for s in SERVICES)) - topics.COMPACTED
    for r in rendered.values():
        granted = acls(r, "operator")
        assert {name for (kind, name), ops in granted.items() if "Read" in ops} == (
            dead_letter_topics
        )
        assert {name for (kind, name), ops in granted.items() if "Write" in ops} == (replay_targets)
        assert {kind for kind, _ in granted} == {"topic"}


@pytest.mark.parametrize("service", SERVICES)
def test_workers_scale_on_their_lag_never_past_the_partitions(
    rendered: dict[str, Rendered], service: str
) -> None:
    for r in rendered.values():
        scaled = r.get("ScaledObject", f"cairn-{service}-worker")["spec"]
        triggers = scaled["triggers"]
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {consumer_group(service)}
        assert {t["metadata"]["topic"] for t in triggers} == subscribed(service)
        assert {t["metadata"]["allowIdleConsumers"] for t in triggers} == {"false"}
        partitions = min(kafka_topics(r)[t]["partitions"] for t in subscribed(service))
        assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= partitions, r.name


@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_has_its_place_in_the_base(service: str) -> None:
    where = deploy_sources(service)
    missing = [s.env for s in settings_of(service) if s.env not in where and s.env not in NOT_SET]
    assert not missing, f"{service} reads settings the base neither sets nor explains: {missing}"
    read = {s.env for s in settings_of(service)}
    unknown = set(where) - read - PENDING
    assert not unknown, f"the base sets what {service} never reads (typo?): {unknown}"
    assert not (set(NOT_SET) & set(where)), "a setting is both set and listed as unset"


@pytest.mark.parametrize("service", SERVICES)
def test_the_base_values_are_accepted_by_the_settings_class(
    rendered: dict[str, Rendered], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = rendered["base"]
    data = {
        **base.get("ConfigMap", "cairn-shared-config")["data"],
        **base.get("ConfigMap", f"cairn-{service}-config")["data"],
    }
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    prefix = service.upper()
    # What the Secrets provide (stand-in values of the real shape).
    monkeypatch.setenv(f"{prefix}_DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/cairn")
    if service == "payments":
        monkeypatch.setenv("PAYMENTS_STRIPE_API_KEY", "sk_live_from_the_secret")
        monkeypatch.setenv("PAYMENTS_STRIPE_WEBHOOK_SECRET", "whsec_from_the_secret")
    monkeypatch.setenv("CAIRN_JWT_SECRET", "a-secret-of-the-real-shape-32-bytes-or-more")
    settings: Any = settings_class(service)()
    assert settings.environment == "production"
    if service != "payments":  # payments' own development values are wired separately
        assert settings.development_values() == [], "the base would refuse to start"
    assert settings.api_host == "0.0.0.0"
    assert settings.api_port == 8000
    assert settings.kafka_enable_idempotence is True
    assert settings.kafka_create_topics is False
    assert not settings.is_sqlite
    if service == "payments":
        assert settings.uses_real_stripe, "production must talk to Stripe, not the stand-in"
