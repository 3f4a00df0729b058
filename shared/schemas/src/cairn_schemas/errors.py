"""The one error type of the event contract: a record that is not a valid Cairn event."""

from __future__ import annotations


class InvalidEvent(ValueError):
    """A Kafka record or payload that is not a valid Cairn event; ``str()`` says why.

    ``event_id`` and ``event_type`` are filled in when the headers got far enough to name
    them, so a dead-letter entry can say which event it was.
    """

    def __init__(
        self, reason: str, *, event_id: str | None = None, event_type: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.event_type = event_type


class UnknownEventType(InvalidEvent):
    """The ``ce_type`` names no event in the catalogue (or the catalogue lookup failed)."""
