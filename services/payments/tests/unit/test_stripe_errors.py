"""How the gateway reads Stripe's errors decides whether a movement is retried (unknown
outcome → reconciling, looked up, then made with the same key) or given up (refused)."""

from __future__ import annotations

import pytest
import stripe
from cairn_payments.adapters.stripe_gateway import (
    StripeDeclined,
    StripeGateway,
    StripeRefused,
    StripeUnknownOutcome,
)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (stripe.APIConnectionError("connection reset"), StripeUnknownOutcome),
        (stripe.APIError("boom", http_status=500), StripeUnknownOutcome),
        (stripe.APIError("gateway timeout", http_status=504), StripeUnknownOutcome),
        # Another request with the same idempotency key is still running.
        (stripe.IdempotencyError("key in use", http_status=409), StripeUnknownOutcome),
        # Rate limited: nothing happened, but a refund or transfer must not be dropped.
        (stripe.RateLimitError("too many requests", http_status=429), StripeUnknownOutcome),
        (
            stripe.InvalidRequestError("Refund exceeds charge", "amount", http_status=400),
            StripeRefused,
        ),
        (
            stripe.CardError("Your card was declined.", None, "card_declined", http_status=402),
            StripeDeclined,
        ),
    ],
)
def test_stripe_errors_are_read_as_retryable_only_when_the_outcome_is_open(
    error: stripe.StripeError, expected: type[Exception]
) -> None:
    assert type(StripeGateway._translate(error)) is expected
