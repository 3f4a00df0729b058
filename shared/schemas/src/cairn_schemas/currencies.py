"""The currencies Cairn accepts: ISO 4217 codes Stripe can charge in, with their minor units.

Amounts travel as integers in the currency's minor unit *as Stripe counts it* (Stripe's
"Supported currencies" page, "Minor units in API amounts"): 100 = $1.00, but 100 = ¥100
for a zero-decimal currency and 1000 = 1.000 KWD for a three-decimal one. A code Stripe
cannot charge in ("XYZ", or ISO's "XXX" = no currency) is refused where money is named,
rather than stored and refused by Stripe at the first payment.
"""

from __future__ import annotations

_ZERO = "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF"
_THREE = "BHD JOD KWD OMR TND"
_PRESENTMENT = """
USD AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL
BSD BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CVE CZK DJF DKK DOP DZD EGP ETB EUR FJD
FKP GBP GEL GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR ISK JMD JOD JPY KES KGS
KHR KMF KRW KWD KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MUR MVR MWK
MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
RWF SAR SBD SCR SEK SGD SHP SLE SOS SRD STD SZL THB TJS TND TOP TRY TTD TWD TZS UAH
UGX UYU UZS VND VUV WST XAF XCD XOF XPF YER ZAR ZMW
"""

#: Stripe's zero-decimal currencies (docs: currencies#zero-decimal).
ZERO_DECIMAL = frozenset(_ZERO.split())
#: Stripe's three-decimal currencies (docs: currencies#three-decimal).
THREE_DECIMAL = frozenset(_THREE.split())
#: Stripe's presentment currencies (docs: currencies#presentment-currencies), upper case.
STRIPE_CURRENCIES = frozenset(_PRESENTMENT.split())


def minor_unit_exponent(currency: str) -> int:
    """Decimal places of ``currency``'s minor unit as Stripe counts it (0, 2 or 3)."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def check_supported(currency: str) -> str:
    """``currency`` if Stripe can charge in it; else ``ValueError`` saying so."""
    if currency not in STRIPE_CURRENCIES:
        raise ValueError(
            f"{currency} is not a currency Stripe can charge in (ISO 4217, e.g. EUR, USD, JPY)"
        )
    return currency
