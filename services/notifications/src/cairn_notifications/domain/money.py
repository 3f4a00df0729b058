"""Amounts for people: integer minor units (as Stripe counts them, cairn_schemas.currencies)
shown the way each currency is written."""

from __future__ import annotations

from cairn_schemas.currencies import minor_unit_exponent

_SYMBOLS: dict[str, str] = {
    "EUR": "€",
    "USD": "$",
    "GBP": "£",
    "JPY": "¥",
    "AUD": "A$",
    "CAD": "CA$",
    "NZD": "NZ$",
    "INR": "₹",
    "KRW": "₩",
}


def format_money(amount: int, currency: str) -> str:
    """``150000, "EUR"`` -> ``"€1,500.00"``; ``1500, "JPY"`` -> ``"¥1,500"``;
    currencies without a well-known symbol -> ``"1,500.00 CHF"``."""
    code = currency.upper()
    exponent = minor_unit_exponent(code)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent)
    text = f"{whole:,}"
    if exponent:
        text += f".{fraction:0{exponent}d}"
    symbol = _SYMBOLS.get(code)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {code}"
