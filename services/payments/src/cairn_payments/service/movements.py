"""Release, refund and split of a funded escrow (DESIGN §4)."""

from __future__ import annotations

from cairn_chassis.messaging import EventRouter

from cairn_payments.service.context import PaymentsContext


def register(router: EventRouter, ctx: PaymentsContext) -> None:
    """Add the release / refund / split handlers to ``router``."""
