"""CloudEvents 1.0 over Kafka, binary content mode (DESIGN §6).

The attributes travel as ``ce_*`` headers, the JSON payload is the record value, and the
key is the event's ``key()`` (the contract id for contract events). ``to_kafka`` builds a
record ready for the outbox; ``from_kafka`` turns a consumed record back into a typed
event, or raises ``InvalidEvent`` with the reason (for the dead-letter topic).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import ValidationError

from cairn_schemas.base import Event
from cairn_schemas.errors import InvalidEvent, UnknownEventType
from cairn_schemas.registry import event_class

__all__ = [
    "CAUSATIONID",
    "CONTENT_TYPE",
    "SPEC_VERSION",
    "TRACEPARENT",
    "TRACESTATE",
    "Envelope",
    "Headers",
    "InvalidEvent",
    "KafkaRecord",
    "UnknownEventType",
    "format_time",
    "from_kafka",
    "headers_dict",
    "new_event_id",
    "to_kafka",
]

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

#: Extension attributes Cairn sets (CloudEvents 1.0: lower-case letters and digits):
#: ``traceparent`` (and ``tracestate``), the distributed-tracing extension — the trace
#: context in which the event was created; ``causationid`` — the id of the event whose
#: handling produced this one (absent when a request or a timer did).
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
CAUSATIONID = "causationid"
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_CORE = frozenset({"specversion", "id", "type", "source", "time", "subject"})

E = TypeVar("E", bound=Event)

HeaderValue = bytes | str | None
Headers = Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue]
"""Kafka headers as aiokafka gives them (pairs of name and bytes) or as a mapping."""


@dataclass(frozen=True)
class KafkaRecord:
    """What to publish: topic, key, value and headers, all as Kafka wants them."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class Envelope(Generic[E]):
    """A received event with its CloudEvents attributes."""

    id: str
    type: str
    source: str
    time: datetime
    subject: str | None
    event: E
    extensions: Mapping[str, str] = field(default_factory=dict)
    """Extension attributes that came with it (``ce_traceparent``, ``ce_causationid`` …)."""


def new_event_id() -> str:
    """A fresh CloudEvents id (a random UUID)."""
    return str(uuid.uuid4())


def format_time(time: datetime) -> str:
    """``time`` as RFC 3339 in UTC with microseconds, e.g. ``2025-01-31T09:30:00.000000Z``."""
    if time.tzinfo is None or time.utcoffset() is None:
        raise ValueError("event time must be timezone-aware")
    return time.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def to_kafka(
    event: Event,
    *,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
    extensions: Mapping[str, str | None] | None = None,
) -> KafkaRecord:
    """Encode ``event`` as a binary-mode CloudEvent on its topic, keyed by ``event.key()``.

    ``source`` names the producer, e.g. ``/cairn/contracts``. Pass ``event_id`` to reuse an
    id (a retried publish must keep it, consumers dedupe on it); by default a new UUID.
    ``extensions`` become ``ce_<name>`` headers (a None value is left out).
    """
    if not source or any(ch.isspace() for ch in source):
        raise ValueError(f"source must be a non-empty URI reference, got {source!r}")
    if event_id is not None and not event_id:
        raise ValueError("event_id must not be empty")
    ce_time = format_time(time if time is not None else datetime.now(UTC))
    headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", event_id or new_event_id()),
        ("ce_type", event.event_type),
        ("ce_source", source),
        ("ce_time", ce_time),
        ("ce_subject", event.subject()),
        ("content-type", CONTENT_TYPE),
    ]
    for name, value in (extensions or {}).items():
        if not _EXTENSION_NAME.fullmatch(name) or name in _CORE:
            raise ValueError(f"{name!r} is not a CloudEvents extension attribute name")
        if value is not None:
            headers.append((f"ce_{name}", value))
    return KafkaRecord(
        topic=event.topic,
        key=event.key().encode(),
        value=event.model_dump_json().encode(),
        headers=[(name, value.encode()) for name, value in headers],
    )


def _pairs(headers: Headers) -> list[tuple[str, HeaderValue]]:
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def headers_dict(headers: Headers) -> dict[str, str]:
    """Headers as ``{name: text}``, whatever form they come in.

    Accepts pairs or a mapping, bytes or str values; ``None`` becomes ``""``, undecodable
    bytes are replaced, and a repeated name keeps its last value.
    """
    result: dict[str, str] = {}
    for name, value in _pairs(headers):
        if value is None:
            result[name] = ""
        elif isinstance(value, bytes):
            result[name] = value.decode("utf-8", errors="replace")
        else:
            result[name] = str(value)
    return result


_REQUIRED = ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time")


def _ce_headers(headers: Headers) -> dict[str, str]:
    """The CloudEvents headers, strictly decoded; other headers are not our business."""
    result: dict[str, str] = {}
    for name, value in _pairs(headers):
        lowered = name.lower()
        if not (lowered.startswith("ce_") or lowered == "content-type"):
            continue
        if isinstance(value, bytes):
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidEvent(f"header {name} is not UTF-8") from None
        else:
            text = "" if value is None else str(value)
        if lowered in result and result[lowered] != text:
            raise InvalidEvent(f"header {name} appears twice with different values")
        result[lowered] = text
    return result


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"ce_time {text!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise ValueError(f"ce_time {text!r} has no timezone offset")
    return parsed.astimezone(UTC)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def from_kafka(headers: Headers, value: bytes, *, topic: str | None = None) -> Envelope[Event]:
    """Decode a consumed record into its typed event.

    Raises ``InvalidEvent`` (with the reason, and the event id/type when known) for missing
    or invalid ``ce_*`` headers, a specversion other than 1.0, an unknown type, a body
    that is not JSON, or a body that fails validation. Unknown body fields are ignored.
    If ``topic`` is given, an event type that does not belong on it is refused too.
    """
    ce = _ce_headers(headers)
    missing = [name for name in _REQUIRED if not ce.get(name)]
    if missing:
        raise InvalidEvent(
            f"not a CloudEvent: missing header(s) {', '.join(missing)}",
            event_id=ce.get("ce_id") or None,
            event_type=ce.get("ce_type") or None,
        )
    event_id, event_type = ce["ce_id"], ce["ce_type"]
    if ce["ce_specversion"] != SPEC_VERSION:
        raise InvalidEvent(
            f"unsupported CloudEvents specversion {ce['ce_specversion']!r}, expected "
            f"{SPEC_VERSION!r}",
            event_id=event_id,
            event_type=event_type,
        )
    content_type = ce.get("content-type")
    if content_type and content_type.split(";")[0].strip().lower() != CONTENT_TYPE:
        raise InvalidEvent(
            f"content-type {content_type!r} is not {CONTENT_TYPE}",
            event_id=event_id,
            event_type=event_type,
        )
    try:
        time = _parse_time(ce["ce_time"])
    except ValueError as exc:
        raise InvalidEvent(str(exc), event_id=event_id, event_type=event_type) from None
    try:
        cls = event_class(event_type)
    except UnknownEventType as exc:
        raise UnknownEventType(exc.reason, event_id=event_id, event_type=event_type) from None
    if topic is not None and cls.topic != topic:
        raise InvalidEvent(
            f"{event_type} belongs on {cls.topic}, not on {topic}",
            event_id=event_id,
            event_type=event_type,
        )
    try:
        event = cls.model_validate_json(value)
    except ValidationError as exc:
        kinds = {item["type"] for item in exc.errors()}
        if "json_invalid" in kinds:
            reason = f"body of {event_type} is not JSON"
        elif "model_type" in kinds and all(not item["loc"] for item in exc.errors()):
            reason = f"body of {event_type} is not a JSON object"
        else:
            reason = f"body of {event_type} failed validation: {_describe(exc)}"
        raise InvalidEvent(reason, event_id=event_id, event_type=event_type) from None
    return Envelope(
        id=event_id,
        type=event_type,
        source=ce["ce_source"],
        time=time,
        subject=ce.get("ce_subject") or None,
        event=event,
        extensions={
            name[3:]: value
            for name, value in ce.items()
            if name.startswith("ce_") and name[3:] not in _CORE and name[3:] != "specversion"
        },
    )
