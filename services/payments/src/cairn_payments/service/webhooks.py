"""Stripe webhooks: stored on receipt, processed through the inbox by the worker."""

from __future__ import annotations

from cairn_payments.service.context import PaymentsContext


async def process_pending(ctx: PaymentsContext) -> int:
    """Process stored webhook events; returns how many were handled."""
    return 0
