"""Amounts for people: integer minor units shown the way each currency is written."""

from __future__ import annotations

# ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS: dict[str, int] = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
}
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


def minor_unit_exponent(currency: str) -> int:
    """How many decimal places ``currency`` has (2 unless ISO 4217 says otherwise)."""
    return _EXPONENTS.get(currency.upper(), 2)


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
