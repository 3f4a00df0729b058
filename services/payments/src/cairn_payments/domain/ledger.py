"""The double-entry ledger: every money movement is one balanced entry (DESIGN §4).

Accounts are named ``<kind>:<owner>``; an entry's postings add up to zero, so the sum over
all accounts is zero after any sequence of entries. Amounts are ``int`` minor units.

Signs: money arriving in an account is positive, money leaving it negative. The customer
funding account of a marketplace therefore goes negative by what its customers paid, and
a milestone's escrow account holds what is waiting for the freelancer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cairn_payments.domain.errors import LedgerError


class Accounts:
    """Names of the ledger's accounts."""

    @staticmethod
    def customer_funding(marketplace_id: str) -> str:
        """Where customers' card money comes from."""
        return f"customer_funding:{marketplace_id}"

    @staticmethod
    def escrow(milestone_id: str) -> str:
        """Money held for one milestone."""
        return f"escrow:{milestone_id}"

    @staticmethod
    def platform_fees(marketplace_id: str) -> str:
        """The platform's fees, kept on the platform account."""
        return f"platform_fees:{marketplace_id}"

    @staticmethod
    def freelancer_payable(freelancer_id: str) -> str:
        """Money transferred to a freelancer's connected account."""
        return f"freelancer_payable:{freelancer_id}"

    @staticmethod
    def refunds(marketplace_id: str) -> str:
        """Money given back to customers' cards."""
        return f"refunds:{marketplace_id}"

    @staticmethod
    def chargebacks(marketplace_id: str) -> str:
        """Money taken back by card networks (disputes opened by the customer's bank)."""
        return f"chargebacks:{marketplace_id}"

    @staticmethod
    def freelancer_receivable(freelancer_id: str) -> str:
        """What a freelancer owes the platform after a chargeback on released money."""
        return f"freelancer_receivable:{freelancer_id}"


ENTRY_KINDS = ("charge", "fee", "transfer", "refund", "reversal", "fee_return", "chargeback")


@dataclass(frozen=True)
class Posting:
    """One line of an entry: an amount into (positive) or out of (negative) an account."""

    account: str
    amount: int


@dataclass(frozen=True)
class LedgerEntry:
    """One balanced movement of money, identified by ``key`` (recorded at most once)."""

    key: str
    kind: str
    marketplace_id: str
    milestone_id: str
    currency: str
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        if self.kind not in ENTRY_KINDS:
            raise LedgerError(f"unknown entry kind {self.kind!r}")
        if len(self.postings) < 2:
            raise LedgerError("an entry needs at least two postings")
        if any(not isinstance(p.amount, int) or isinstance(p.amount, bool) for p in self.postings):
            raise LedgerError("amounts are int minor units")
        if sum(p.amount for p in self.postings) != 0:
            raise LedgerError(f"entry {self.key} does not balance")


def move(
    key: str,
    kind: str,
    *,
    marketplace_id: str,
    milestone_id: str,
    currency: str,
    amount: int,
    source: str,
    destination: str,
) -> LedgerEntry:
    """An entry moving ``amount`` (> 0) from ``source`` to ``destination``."""
    if amount <= 0:
        raise LedgerError(f"{kind} amount must be positive, got {amount}")
    return LedgerEntry(
        key=key,
        kind=kind,
        marketplace_id=marketplace_id,
        milestone_id=milestone_id,
        currency=currency,
        postings=(Posting(source, -amount), Posting(destination, amount)),
    )


@dataclass
class EscrowLedger:
    """An in-memory view of entries: balances per account, per currency."""

    entries: list[LedgerEntry] = field(default_factory=list)
    _keys: set[str] = field(default_factory=set)
    _balances: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    def of(cls, entries: Iterable[LedgerEntry]) -> EscrowLedger:
        """A ledger holding ``entries``."""
        ledger = cls()
        for entry in entries:
            ledger.record(entry)
        return ledger

    def record(self, entry: LedgerEntry) -> bool:
        """Add ``entry``; False (and no change) if an entry with its key is already there."""
        if entry.key in self._keys:
            return False
        self._keys.add(entry.key)
        self.entries.append(entry)
        for posting in entry.postings:
            self._balances[(posting.account, entry.currency)] += posting.amount
        return True

    def balance(self, account: str, currency: str) -> int:
        """The balance of one account in one currency."""
        return self._balances.get((account, currency), 0)

    def balances(self) -> Mapping[tuple[str, str], int]:
        """Every (account, currency) with its balance."""
        return dict(self._balances)

    def total(self) -> int:
        """Sum over all accounts (always 0: every entry balances)."""
        return sum(self._balances.values())
