"""Tiny synchronous JSON-over-HTTP client (stdlib only) for the dev-only control endpoints.

Test helpers use it so that importing the pytest plugin pulls in no HTTP library.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

__all__ = ["HttpError", "request_json"]


class HttpError(RuntimeError):
    """A control endpoint answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


def request_json(
    method: str,
    url: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Any:
    """Send ``body`` as JSON (or ``form`` url-encoded) and return the decoded JSON answer.

    An empty answer returns None; a status >= 400 raises :class:`HttpError`.
    """
    data: bytes | None = None
    all_headers = dict(headers or {})
    if form is not None:
        from urllib.parse import urlencode

        data = urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked above
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raise HttpError(exc.code, exc.read().decode("utf-8", "replace")) from None
    return json.loads(raw) if raw.strip() else None
