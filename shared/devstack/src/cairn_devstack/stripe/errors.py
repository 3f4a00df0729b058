"""Stripe-shaped error bodies, so the ``stripe`` SDK raises the exception class it would
raise against the real API (``InvalidRequestError``, ``IdempotencyError``, ...)."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from localstripe.errors import UserError

__all__ = [
    "ZERO_DECIMAL_CURRENCIES",
    "crash_middleware",
    "format_amount",
    "json_response",
    "stripe_error",
]

log = logging.getLogger("cairn_devstack.stripe")

# Currencies whose minor unit is the whole unit (Stripe's list, the common ones).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)


def stripe_error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    error_type: str = "invalid_request_error",
    **extra: Any,
) -> UserError:
    """Build the exception localstripe's error middleware turns into a Stripe error body."""
    contents: dict[str, Any] = dict(extra)
    if code is not None:
        contents["code"] = code
    if param is not None:
        contents["param"] = param
    error = UserError(status, message, contents)
    # UserError always says invalid_request_error; a few errors need another type.
    error.body["error"]["type"] = error_type
    return error


def format_amount(amount: int, currency: str) -> str:
    """Human form of a minor-unit amount, as Stripe puts it in messages ("12.50 EUR")."""
    if currency.lower() in ZERO_DECIMAL_CURRENCIES:
        return f"{amount} {currency.upper()}"
    return f"{amount / 100:.2f} {currency.upper()}"


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON answer formatted like localstripe's own (indented, sorted keys)."""
    return web.json_response(
        data, status=status, dumps=lambda x: json.dumps(x, indent=2, sort_keys=True) + "\n"
    )


@web.middleware
async def crash_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn a bug in localstripe (or in us) into Stripe's JSON ``api_error`` 500.

    Without it aiohttp answers plain text, which the SDK reports only as "Invalid
    response body", hiding the cause.
    """
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException:
        raise
    except Exception as exc:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response(
            {"error": {"type": "api_error", "message": f"localstripe crashed: {exc!r}"}},
            status=500,
        )
