"""Every event class by its ``event_type`` (the CloudEvents ``type``)."""

from __future__ import annotations

from cairn_schemas import topics
from cairn_schemas.base import Event
from cairn_schemas.errors import InvalidEvent, UnknownEventType
from cairn_schemas.events import CATALOGUE

__all__ = ["EVENT_TYPES", "InvalidEvent", "UnknownEventType", "event_class", "events_on"]


def _index(classes: tuple[type[Event], ...]) -> dict[str, type[Event]]:
    index: dict[str, type[Event]] = {}
    for cls in classes:
        if cls.event_type in index:
            raise RuntimeError(
                f"{cls.__name__} and {index[cls.event_type].__name__} both claim "
                f"event type {cls.event_type!r}"
            )
        if cls.topic not in topics.ALL:
            raise RuntimeError(f"{cls.__name__} is published on unknown topic {cls.topic!r}")
        index[cls.event_type] = cls
    return index


EVENT_TYPES: dict[str, type[Event]] = _index(CATALOGUE)


def event_class(event_type: str) -> type[Event]:
    """The class of ``event_type``; raises ``UnknownEventType`` if there is none."""
    try:
        return EVENT_TYPES[event_type]
    except KeyError:
        raise UnknownEventType(
            f"unknown event type {event_type!r}: not in the Cairn event catalogue",
            event_type=event_type,
        ) from None


def events_on(topic: str) -> tuple[type[Event], ...]:
    """The event classes published on ``topic``, e.g. to document a subscriber."""
    return tuple(cls for cls in EVENT_TYPES.values() if cls.topic == topic)
