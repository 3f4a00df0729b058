"""The reconciler: settles escrows whose Stripe call had an unknown outcome."""

from __future__ import annotations

from cairn_payments.service.context import PaymentsContext


async def sweep(ctx: PaymentsContext) -> int:
    """Settle what can be settled now; returns how many escrows moved."""
    return 0
