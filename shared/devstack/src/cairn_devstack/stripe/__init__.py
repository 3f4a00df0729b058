"""localstripe with Cairn's Connect extension (accounts, transfers, reversals),
Stripe-style idempotency, over-refund refusal, fault injection and test stats.

Run it with ``cairn-devstack stripe --port 8420 --data-dir .data/stripe`` or
``python -m cairn_devstack.stripe``; see ``shared/devstack/README.md`` for endpoints.
"""

from cairn_devstack.stripe.app import DEFAULT_PORT, build_app, serve

__all__ = ["DEFAULT_PORT", "build_app", "serve"]
