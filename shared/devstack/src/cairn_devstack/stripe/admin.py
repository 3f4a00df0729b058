"""Dev-only ``/_config`` endpoints for tests: object counts and webhook removal.

localstripe exempts ``/_config/`` from API-key checks; none of this exists on Stripe.
"""

from __future__ import annotations

from collections import Counter

from aiohttp import web
from localstripe.resources import store

from cairn_devstack.stripe.faults import fault_counts
from cairn_devstack.stripe.idempotency import KEY_PREFIX
from cairn_devstack.stripe.store import unregister_webhook

__all__ = ["add_admin_routes", "object_counts"]

# Names the tests use for object types whose plural is not just "+s".
_ALIASES = {"transfer_reversal": "reversals"}
_ALWAYS = (
    "account",
    "charge",
    "customer",
    "event",
    "payment_intent",
    "payment_method",
    "refund",
    "transfer",
    "transfer_reversal",
)


def object_counts() -> dict[str, int]:
    """Number of stored objects per type, keyed by plural name ("charges", "reversals")."""
    kinds = Counter(
        key.split(":", 1)[0]
        for key in store
        if isinstance(key, str) and ":" in key and not key.startswith(KEY_PREFIX)
    )
    for kind in _ALWAYS:
        kinds.setdefault(kind, 0)
    return {_ALIASES.get(kind, kind + "s"): n for kind, n in sorted(kinds.items())}


async def _stats(request: web.Request) -> web.Response:
    idempotency_keys = sum(
        1 for key in store if isinstance(key, str) and key.startswith(KEY_PREFIX)
    )
    return web.json_response(
        {**object_counts(), "idempotency_keys": idempotency_keys, "faults": fault_counts()}
    )


async def _delete_webhook(request: web.Request) -> web.Response:
    if not unregister_webhook(request.match_info["id"]):
        raise web.HTTPNotFound(text="no such webhook\n")
    return web.Response(status=204)


def add_admin_routes(app: web.Application) -> None:
    """Register ``GET /_config/stats`` and ``DELETE /_config/webhooks/{id}``."""
    app.router.add_get("/_config/stats", _stats)
    app.router.add_delete("/_config/webhooks/{id}", _delete_webhook)
