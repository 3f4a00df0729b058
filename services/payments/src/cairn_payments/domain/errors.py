"""Errors of the payments domain."""

from __future__ import annotations


class PaymentsError(Exception):
    """Base of every domain error."""


class LedgerError(PaymentsError):
    """An entry that would break the ledger (unbalanced, non-integer, non-positive)."""


class EscrowRuleBroken(PaymentsError):
    """An escrow movement that its state forbids (over-refund, release while frozen...)."""
