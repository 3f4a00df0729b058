"""Reading a Server-Sent Events stream (WHATWG HTML, "Interpreting an event stream"), as
``make demo``, the benchmark's client and the tests follow a contract's live updates."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ServerEvent:
    """One dispatched event: its type (``message`` by default), id and data."""

    event: str = "message"
    id: str | None = None
    data_lines: list[str] = field(default_factory=list)

    @property
    def data(self) -> str:
        return "\n".join(self.data_lines)

    def json(self) -> Any:
        """The data as JSON."""
        return json.loads(self.data)


class EventParser:
    """Feeds lines in, hands complete events out (comments and keep-alives are skipped)."""

    def __init__(self) -> None:
        self._event = ServerEvent()

    def feed(self, line: str) -> ServerEvent | None:
        """The event a blank line completes, else None."""
        line = line.rstrip("\r\n")
        if not line:
            done, self._event = self._event, ServerEvent()
            return done if done.data_lines else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event.event = value
        elif name == "data":
            self._event.data_lines.append(value)
        elif name == "id" and "\0" not in value:
            self._event.id = value
        return None


def events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """The events of a stream read line by line."""
    parser = EventParser()
    for line in lines:
        if (event := parser.feed(line)) is not None:
            yield event


async def aevents(lines: AsyncIterable[str]) -> AsyncIterator[ServerEvent]:
    """The events of a stream read line by line, asynchronously."""
    parser = EventParser()
    async for line in lines:
        if (event := parser.feed(line)) is not None:
            yield event
