"""Misbehaviour the sink can be told to show, so tests see what a flaky SMTP server does.

- ``tempfail_next``: the next N transactions get ``451`` (transient) — at DATA by
  default, or at RCPT with ``"tempfail_at": "rcpt"`` (each RCPT then uses one);
- ``reject_recipients``: these addresses get ``550`` (permanent) at RCPT;
- ``drop_next``: the next N transactions lose the connection after the message data was
  sent but before any answer — the client cannot know whether it was delivered; the
  message is not kept.

Being *down* is not a fault here: stop the process (the pytest fixture's ``stop()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SmtpFaults"]

_FIELDS = {"tempfail_next", "tempfail_at", "reject_recipients", "drop_next"}


@dataclass
class SmtpFaults:
    """Current fault settings plus counters of what was injected."""

    tempfail_next: int = 0
    tempfail_at: str = "data"
    reject_recipients: set[str] = field(default_factory=set)
    drop_next: int = 0
    injected: dict[str, int] = field(
        default_factory=lambda: {"tempfail": 0, "rejected": 0, "dropped": 0}
    )

    def update(self, data: Any) -> None:
        """Merge settings from a JSON body; raises ValueError and changes nothing if invalid."""
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        unknown = set(data) - _FIELDS
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        for name in ("tempfail_next", "drop_next"):
            value = data.get(name, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        if data.get("tempfail_at", "data") not in ("data", "rcpt"):
            raise ValueError("tempfail_at must be 'data' or 'rcpt'")
        rejected = data.get("reject_recipients", [])
        if not isinstance(rejected, list) or not all(isinstance(a, str) for a in rejected):
            raise ValueError("reject_recipients must be a list of addresses")
        if "tempfail_next" in data:
            self.tempfail_next = data["tempfail_next"]
        if "tempfail_at" in data:
            self.tempfail_at = data["tempfail_at"]
        if "drop_next" in data:
            self.drop_next = data["drop_next"]
        if "reject_recipients" in data:
            self.reject_recipients = {a.strip().lower() for a in rejected}

    def clear(self) -> None:
        """No faults any more (counters are kept)."""
        self.tempfail_next = 0
        self.tempfail_at = "data"
        self.reject_recipients = set()
        self.drop_next = 0

    def rejects(self, address: str) -> bool:
        """True (and counted) if ``address`` must be refused permanently."""
        if address.strip().lower() in self.reject_recipients:
            self.injected["rejected"] += 1
            return True
        return False

    def take_tempfail(self, stage: str) -> bool:
        """True (and one used up) if this ``stage`` must answer 451."""
        if self.tempfail_next > 0 and self.tempfail_at == stage:
            self.tempfail_next -= 1
            self.injected["tempfail"] += 1
            return True
        return False

    def take_drop(self) -> bool:
        """True (and one used up) if this transaction must lose its connection."""
        if self.drop_next > 0:
            self.drop_next -= 1
            self.injected["dropped"] += 1
            return True
        return False

    def describe(self) -> dict[str, Any]:
        """JSON form for ``GET /api/faults``."""
        return {
            "tempfail_next": self.tempfail_next,
            "tempfail_at": self.tempfail_at,
            "reject_recipients": sorted(self.reject_recipients),
            "drop_next": self.drop_next,
            "injected": dict(self.injected),
        }
