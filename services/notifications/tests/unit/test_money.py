"""Amounts in emails read the way each currency is written."""

from __future__ import annotations

import pytest
from cairn_notifications.domain.money import format_money


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (150_000, "EUR", "€1,500.00"),
        (5, "USD", "$0.05"),
        (99, "GBP", "£0.99"),
        (150_000, "JPY", "¥150,000"),
        (1_234_567, "KWD", "1,234.567 KWD"),
        (250_000, "CHF", "2,500.00 CHF"),
        (0, "EUR", "€0.00"),
        (-1_050, "EUR", "-€10.50"),
        (1_000, "eur", "€10.00"),
    ],
)
def test_minor_units_are_shown_in_the_currency_s_own_format(
    amount: int, currency: str, shown: str
) -> None:
    assert format_money(amount, currency) == shown


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (500, "JPY", "¥500"),
        (500, "KRW", "₩500"),
        (500, "MGA", "500 MGA"),
        (1_500, "BHD", "1.500 BHD"),
    ],
)
def test_zero_and_three_decimal_currencies_count_minor_units_as_stripe_does(
    amount: int, currency: str, shown: str
) -> None:
    """Issue 16: "¥500", not "¥5.00". MGA is zero-decimal for Stripe (ISO says 2)."""
    assert format_money(amount, currency) == shown
