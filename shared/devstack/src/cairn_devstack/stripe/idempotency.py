"""Stripe's ``Idempotency-Key`` semantics, which stock localstripe ignores.

Per API key, the first POST with a key runs and its answer is kept in localstripe's store
(so it survives a restart); a later POST with the same key and the same method, path
and parameters gets that answer again (header ``Idempotent-Replayed: true``) without
running anything; the same key with other parameters is refused with 400
``idempotency_error``; the same key while the first request still runs gets 409.

What is kept follows Stripe ("results are only saved if the endpoint began executing"):
successes and card declines (402) are kept; other 4xx (parameter validation here), 5xx
and injected faults are not, so a retry after fixing the request or after an outage
runs for real. Keys do not expire (Stripe forgets them after 24 h).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from localstripe.resources import store

__all__ = ["KEY_PREFIX", "idempotency_middleware"]

KEY_PREFIX = "idempotency:"
_KEPT_STATUSES = range(200, 300)
_in_flight: set[str] = set()


def _canonical_params(body: bytes, content_type: str, query: str) -> Any:
    """Parameters in an order-independent form, so the same request hashes the same."""
    params: Any
    if content_type == "application/json" and body:
        try:
            params = json.loads(body)
        except ValueError:
            params = body.decode("utf-8", "replace")
    else:
        params = sorted(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return {"body": params, "query": sorted(parse_qsl(query, keep_blank_values=True))}


def _fingerprint(request: web.Request, body: bytes) -> str:
    canonical = {
        "method": request.method,
        "path": request.path,
        "params": _canonical_params(body, request.content_type, request.query_string),
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _store_key(request: web.Request, key: str) -> str:
    # Keys are scoped to the caller's API key, as on Stripe.
    who = hashlib.sha256(request.headers.get("Authorization", "").encode()).hexdigest()[:16]
    return f"{KEY_PREFIX}{who}:{key}"


def _error(status: int, message: str, key: str, **extra: str) -> web.Response:
    body = {"error": {"type": "idempotency_error", "message": message, **extra}}
    return web.json_response(body, status=status, headers={"Idempotency-Key": key})


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Replay, refuse or run a POST according to its ``Idempotency-Key``."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or not request.path.startswith("/v1/"):
        response: web.StreamResponse = await handler(request)
        return response
    fingerprint = _fingerprint(request, await request.read())
    store_key = _store_key(request, key)
    record = store.get(store_key)
    if record is not None:
        if record["fingerprint"] != fingerprint:
            return _error(
                400,
                "Keys for idempotent requests can only be used with the same parameters "
                f"they were first used with. Try using a key other than '{key}' if you "
                "meant to execute a different request.",
                key,
            )
        return web.Response(
            status=record["status"],
            body=record["body"],
            content_type=record["content_type"],
            headers={"Idempotency-Key": key, "Idempotent-Replayed": "true"},
        )
    if store_key in _in_flight:
        return _error(
            409,
            "There is currently another in-progress request using this Idempotent Key "
            "(that probably means you submitted twice, and the other request is still "
            "going through).",
            key,
            code="idempotency_key_in_use",
        )
    _in_flight.add(store_key)
    try:
        response = await handler(request)
    finally:
        _in_flight.discard(store_key)
    if isinstance(response, web.Response) and (
        response.status in _KEPT_STATUSES or response.status == 402
    ):
        body = response.body
        store[store_key] = {
            "fingerprint": fingerprint,
            "status": response.status,
            "body": bytes(body) if isinstance(body, bytes | bytearray) else b"",
            "content_type": response.content_type,
        }
        # localstripe saved the store before we added the record; save again so a
        # restart cannot turn a replay into a second charge.
        store.dump_to_disk()
    response.headers["Idempotency-Key"] = key
    return response
