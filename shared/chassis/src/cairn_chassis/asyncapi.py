"""The AsyncAPI 3.0 document of one service, for the teams and code generators that use
its events (issue 19, item 8).

FastStream's own generator gives a publisher one message whose payload is an ``anyOf`` of
every type on the topic (overlapping: a ``milestone.funded`` body validates against
several), knows nothing of the CloudEvents headers, and documents a subscriber that reads
the raw record as ``{"type": "null"}``. This builds the document from what the service
declares (:func:`declare_subscription`, :func:`declare_publication`) and the event
catalogue instead:

- one message per event type, with its payload schema and its headers — the ``ce_*``
  attributes of the CloudEvents Kafka binary mode, ``ce_type`` fixed per message — its
  Kafka key, and a ``correlationId`` at ``ce_causationid`` (the event that caused it);
- a channel per topic listing every message that may be on it; an operation per topic the
  service publishes (``send``: every type) or consumes (``receive``: the types its
  consumer group handles, with the group id);
- the production server (Strimzi's TLS listener, SASL_SSL with SCRAM-SHA-512) and the
  local one of ``make run``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cairn_schemas import topics as cairn_topics
from cairn_schemas.base import Event
from cairn_schemas.cloudevents import CAUSATIONID, CONTENT_TYPE, SPEC_VERSION, TRACEPARENT
from cairn_schemas.registry import events_on

PRODUCTION_BOOTSTRAP = "cairn-kafka-kafka-bootstrap.kafka.svc:9093"
LOCAL_BOOTSTRAP = "127.0.0.1:9092"
#: Who publishes each topic (the ``ce_source`` of its events).
PRODUCERS = {
    cairn_topics.CONTRACTS: "contracts",
    cairn_topics.MARKETPLACES: "contracts",
    cairn_topics.PAYMENTS: "payments",
    cairn_topics.NOTIFICATIONS: "notifications",
}
_KAFKA_BINDING = "0.5.0"


@dataclass
class Declared:
    """What one service's broker consumes and publishes."""

    service: str
    subscriptions: list[tuple[str, tuple[str, ...], tuple[str, ...], str]] = field(
        default_factory=list
    )  # (group, topics, handled event types, description)
    publications: list[str] = field(default_factory=list)


def declared(broker: Any, service: str = "") -> Declared:
    """The declarations kept on ``broker`` (created on first use)."""
    found: Declared | None = getattr(broker, "_cairn_declared", None)
    if found is None:
        found = Declared(service)
        broker._cairn_declared = found
    if service and not found.service:
        found.service = service
    return found


def declare_subscription(
    broker: Any, group: str, topics: Sequence[str], handled: Sequence[str], description: str
) -> None:
    """Record that consumer group ``group`` reads ``topics`` and handles ``handled``."""
    declared(broker).subscriptions.append((group, tuple(topics), tuple(handled), description))


def declare_publication(broker: Any, service: str, topics: Sequence[str]) -> None:
    """Record that ``service`` publishes ``topics`` (through its outbox relay)."""
    d = declared(broker, service)
    d.publications.extend(t for t in topics if t not in d.publications)


def _channel_id(topic: str) -> str:
    return topic.replace(".", "_")


def headers_schema(cls: type[Event]) -> dict[str, Any]:
    """The CloudEvents headers of one event type (Kafka binary content mode)."""
    return {
        "type": "object",
        "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time"],
        "properties": {
            "ce_specversion": {"type": "string", "const": SPEC_VERSION},
            "ce_id": {
                "type": "string",
                "description": "The event's id: a redelivery or a replay keeps it; "
                "deduplicate on it.",
            },
            "ce_type": {"type": "string", "const": cls.event_type},
            "ce_source": {
                "type": "string",
                "const": f"/cairn/{PRODUCERS.get(cls.topic, 'contracts')}",
            },
            "ce_time": {"type": "string", "format": "date-time"},
            "ce_subject": {"type": "string", "description": "What the event is about."},
            "content-type": {"type": "string", "const": CONTENT_TYPE},
            f"ce_{TRACEPARENT}": {
                "type": "string",
                "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "CloudEvents distributed-tracing extension: the W3C trace "
                "context the event was created in (when tracing is on).",
            },
            f"ce_{CAUSATIONID}": {
                "type": "string",
                "description": "The id (ce_id) of the event whose handling produced this "
                "one; absent when a request or a timer did.",
            },
        },
    }


def _message(cls: type[Event]) -> dict[str, Any]:
    doc = inspect.cleandoc(cls.__doc__ or "")
    return {
        "name": cls.__name__,
        "title": cls.event_type,
        "summary": doc.splitlines()[0] if doc else cls.event_type,
        "description": doc,
        "contentType": CONTENT_TYPE,
        "headers": headers_schema(cls),
        "payload": {"$ref": f"#/components/schemas/{cls.__name__}"},
        "correlationId": {
            "description": "The event that caused this one (absent for a request's or a "
            "timer's event).",
            "location": f"$message.header#/ce_{CAUSATIONID}",
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": cls.key_description},
                "bindingVersion": _KAFKA_BINDING,
            }
        },
    }


def _payload_schemas(classes: Sequence[type[Event]]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for cls in classes:
        schema = cls.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[cls.__name__] = schema
    return dict(sorted(schemas.items()))


def asyncapi_document(broker: Any, *, title: str, version: str) -> dict[str, Any]:
    """The service's AsyncAPI 3.0 document, from its broker's declarations."""
    d = declared(broker)
    consumed = {t for _, ts, _, _ in d.subscriptions for t in ts}
    used_topics = sorted(set(d.publications) | consumed)
    classes = sorted(
        {cls for topic in used_topics for cls in events_on(topic)}, key=lambda c: c.__name__
    )
    channels: dict[str, Any] = {}
    for topic in used_topics:
        binding: dict[str, Any] = {"topic": topic, "bindingVersion": _KAFKA_BINDING}
        if topic in cairn_topics.COMPACTED:
            binding["topicConfiguration"] = {"cleanup.policy": ["compact"]}
        key = "marketplace id" if topic in cairn_topics.COMPACTED else "contract id"
        channels[_channel_id(topic)] = {
            "address": topic,
            "title": topic,
            "description": f"Published by the {PRODUCERS.get(topic, '?')} service; key = "
            f"{key}, so one {key.split()[0]}'s events stay in order.",
            "messages": {
                cls.__name__: {"$ref": f"#/components/messages/{cls.__name__}"}
                for cls in events_on(topic)
            },
            "bindings": {"kafka": binding},
        }
    operations: dict[str, Any] = {}
    for topic in d.publications:
        channel = _channel_id(topic)
        operations[f"publish_{channel}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "title": f"{d.service} publishes on {topic}",
            "summary": "Through its transactional outbox: at least once, in order per key.",
            "messages": [
                {"$ref": f"#/channels/{channel}/messages/{cls.__name__}"}
                for cls in events_on(topic)
            ],
        }
    for group, group_topics, handled, description in d.subscriptions:
        for topic in group_topics:
            channel = _channel_id(topic)
            mine = [cls for cls in events_on(topic) if cls.event_type in handled]
            operations[f"{group}_consumes_{channel}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel}"},
                "title": f"consumer group {group} reads {topic}",
                "description": description,
                "messages": [
                    {"$ref": f"#/channels/{channel}/messages/{cls.__name__}"} for cls in mine
                ],
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [group]},
                        "bindingVersion": _KAFKA_BINDING,
                    }
                },
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": f"Events the Cairn {d.service} service publishes and consumes: "
            "CloudEvents 1.0 in Kafka binary content mode (the attributes in ce_* headers, "
            "the JSON payload as the value). Delivery is at least once: deduplicate on "
            "ce_id. docs/subscribers.md says how to subscribe.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "production": {
                "host": PRODUCTION_BOOTSTRAP,
                "protocol": "kafka-secure",
                "title": "Strimzi Kafka cluster cairn-kafka (TLS listener)",
                "description": "SASL_SSL with SCRAM-SHA-512: a KafkaUser per client, its "
                "password in the Secret Strimzi writes; the cluster CA to trust.",
                "security": [{"$ref": "#/components/securitySchemes/scramSha512"}],
            },
            "development": {
                "host": LOCAL_BOOTSTRAP,
                "protocol": "kafka",
                "description": "The local broker of `make run` (PLAINTEXT).",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {cls.__name__: _message(cls) for cls in classes},
            "schemas": _payload_schemas(classes),
            "securitySchemes": {
                "scramSha512": {
                    "type": "scramSha512",
                    "description": "SCRAM-SHA-512 over TLS (security.protocol=SASL_SSL).",
                }
            },
        },
    }
