"""The caught messages: kept in memory and, with a data dir, appended to a JSON-lines
file so restarting the sink (or simulating an outage) keeps the history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["MessageStore"]


class MessageStore:
    """Append-only list of message records, optionally mirrored to ``messages.jsonl``."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self._path = data_dir / "messages.jsonl" if data_dir is not None else None
        self._messages: list[dict[str, Any]] = []
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._load()
        self._next_id = max((m["id"] for m in self._messages), default=0) + 1

    def _load(self) -> None:
        assert self._path is not None
        if not self._path.exists():
            return
        for line in self._path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                # A torn last line (killed mid-write) is skipped, not fatal.
                try:
                    self._messages.append(json.loads(line))
                except json.JSONDecodeError:
                    continue

    def next_id(self) -> int:
        """Reserve the id of the next message."""
        value = self._next_id
        self._next_id += 1
        return value

    def add(self, record: dict[str, Any]) -> None:
        """Keep ``record`` (in memory and on disk)."""
        self._messages.append(record)
        if self._path is not None:
            with self._path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def all(self) -> list[dict[str, Any]]:
        """Every message, oldest first."""
        return list(self._messages)

    def get(self, message_id: int) -> dict[str, Any] | None:
        """One message by id, or None."""
        return next((m for m in self._messages if m["id"] == message_id), None)

    def clear(self) -> None:
        """Forget every message (ids keep counting up, so old links never point at new mail)."""
        self._messages.clear()
        if self._path is not None:
            self._path.write_text("", encoding="utf-8")
