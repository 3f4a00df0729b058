"""``POST /v1/stripe/webhook``: Stripe's events, verified and stored, answered fast."""

from __future__ import annotations

import asyncio

from cairn_chassis.errors import Problem
from cairn_chassis.logging import get_logger
from fastapi import APIRouter, Request
from prometheus_client import Counter

from cairn_payments.entrypoints.deps import ContextDep
from cairn_payments.service import webhooks

log = get_logger(__name__)

router = APIRouter(tags=["stripe"])

WEBHOOKS_REFUSED = Counter(
    "cairn_payments_webhooks_refused_total",
    "Stripe webhooks refused (400 stripe.bad_signature): no or a wrong signature, an old "
    "timestamp, or a body that is no Stripe event",
)

_background: set[asyncio.Task[bool]] = set()


@router.post(
    "/v1/stripe/webhook",
    summary="Stripe webhook endpoint (signature checked on the raw body, 300 s tolerance)",
)
async def stripe_webhook(request: Request, ctx: ContextDep) -> dict[str, object]:
    payload = await request.body()
    try:
        event_id, new = await webhooks.receive(
            ctx, payload, request.headers.get("stripe-signature")
        )
    except webhooks.BadWebhook as exc:
        WEBHOOKS_REFUSED.inc()
        raise Problem(400, "stripe.bad_signature", f"Webhook refused: {exc}") from exc
    if new:
        # Processed right after the answer; the worker's sweep catches anything missed.
        task = asyncio.create_task(webhooks.process_or_record(ctx, event_id))
        _background.add(task)
        task.add_done_callback(_done)
    return {"received": True, "id": event_id, "duplicate": not new}


def _done(task: asyncio.Task[bool]) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("webhook.inline_processing_failed", error=repr(task.exception()))
