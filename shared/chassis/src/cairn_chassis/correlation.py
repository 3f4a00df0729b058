"""What ties a log line, an event and a trace to what caused them (issue 19, item 4).

- A request's id (``X-Request-ID``, accepted when well formed, else made) is in every log
  line written while the request runs, and echoed on the answer.
- While a consumer handles an event, its id, type and contract id are in every log line,
  and every event it writes names it as its cause (``ce_causationid``): the AsyncAPI
  ``correlationId`` of every message points there.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog

REQUEST_ID_HEADER = "x-request-id"
#: What a caller may send as its request id: what gateways and tracing tools generate
#: (UUIDs, hex, base64url, dotted or colon-separated ids), one line, bounded.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")

_causing_event: ContextVar[str | None] = ContextVar("cairn_causing_event", default=None)


def request_id(offered: str | None) -> str:
    """The caller's ``X-Request-ID`` when well formed, else a new one (a UUID)."""
    if offered is not None and REQUEST_ID.fullmatch(offered):
        return offered
    return str(uuid.uuid4())


def causing_event() -> str | None:
    """The id of the event being handled in this context, if any."""
    return _causing_event.get()


@contextmanager
def handling_event(
    *, event_id: str, event_type: str, consumer: str, contract_id: str | None
) -> Iterator[None]:
    """Within: log lines carry the event, and events written name it as their cause."""
    token = _causing_event.set(event_id)
    fields: dict[str, Any] = {"event_id": event_id, "event_type": event_type, "consumer": consumer}
    if contract_id:
        fields["contract_id"] = contract_id
    try:
        with structlog.contextvars.bound_contextvars(**fields):
            yield
    finally:
        _causing_event.reset(token)
