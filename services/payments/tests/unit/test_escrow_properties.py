"""Property test: any sequence of funding, release, refund, split, chargeback and
duplicated deliveries keeps the books balanced and the escrows sane."""

from __future__ import annotations

from cairn_payments.domain.errors import EscrowRuleBroken
from cairn_payments.domain.escrow import Escrow
from cairn_payments.domain.ledger import Accounts, EscrowLedger, LedgerEntry
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

MILESTONES = ("m1", "m2", "m3")


class EscrowBooks(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = EscrowLedger()
        self.escrows: dict[str, Escrow] = {}
        self.last: list[LedgerEntry] = []
        self.charges = 0

    def _escrow(self, m: str, amount: int) -> Escrow:
        if m not in self.escrows:
            self.escrows[m] = Escrow(
                milestone_id=m,
                marketplace_id="mkt",
                contract_id="c",
                customer_id="cu",
                freelancer_id="fr",
                amount=amount,
                currency="EUR",
            )
        return self.escrows[m]

    def _apply(self, entries: list[LedgerEntry]) -> None:
        for entry in entries:
            self.ledger.record(entry)
        self.last = entries

    @rule(m=st.sampled_from(MILESTONES), amount=st.integers(1, 1_000_000), succeed=st.booleans())
    def fund(self, m: str, amount: int, succeed: bool) -> None:
        escrow = self._escrow(m, amount)
        attempt = escrow.attempt + (0 if escrow.state == "funding" else 1)
        if not escrow.may_fund(attempt):
            return
        escrow.begin_funding(attempt)
        if succeed:
            self.charges += 1
            self._apply(escrow.funding_succeeded(f"pi_{m}_{attempt}", f"ch_{m}_{attempt}"))
        else:
            escrow.funding_failed(f"pi_{m}_{attempt}")

    @rule(m=st.sampled_from(MILESTONES), bps=st.integers(0, 10_000))
    def release(self, m: str, bps: int) -> None:
        escrow = self.escrows.get(m)
        if escrow is None:
            return
        try:
            fee, net = escrow.release_parts(bps)
        except EscrowRuleBroken:
            return
        self._apply(escrow.released(f"tr_{m}", fee, net))

    @rule(m=st.sampled_from(MILESTONES))
    def refund(self, m: str) -> None:
        escrow = self.escrows.get(m)
        if escrow is None:
            return
        try:
            to_reverse, _ = escrow.refund_parts()
        except EscrowRuleBroken:
            return
        entries: list[LedgerEntry] = []
        if to_reverse and escrow.transfer_id:
            entries += escrow.transfer_reversed(f"trr_{m}")
        if escrow.held > 0:
            entries += escrow.refunded_money(f"re_{m}", escrow.held, final=True)
        self._apply(entries)

    @rule(m=st.sampled_from(MILESTONES), share=st.floats(0, 0.99), bps=st.integers(0, 10_000))
    def split(self, m: str, share: float, bps: int) -> None:
        escrow = self.escrows.get(m)
        if escrow is None:
            return
        to_freelancer = int(escrow.held * share)
        try:
            fee, net = escrow.split_parts(to_freelancer, escrow.held - to_freelancer, bps)
        except EscrowRuleBroken:
            return
        entries = escrow.split_transferred(f"trs_{m}", fee, net)
        entries += escrow.split_refunded(f"res_{m}")
        self._apply(entries)

    @rule(m=st.sampled_from(MILESTONES), amount=st.integers(1, 2_000_000))
    def chargeback(self, m: str, amount: int) -> None:
        escrow = self.escrows.get(m)
        if escrow is None or not escrow.charged:
            return
        self._apply(escrow.chargeback_opened(f"dp_{m}", amount))

    @rule()
    def duplicate_delivery(self) -> None:
        before = self.ledger.balances()
        for entry in self.last:
            assert self.ledger.record(entry) is False
        assert self.ledger.balances() == before

    @invariant()
    def books_balance(self) -> None:
        assert self.ledger.total() == 0

    @invariant()
    def escrows_are_sane(self) -> None:
        for m, escrow in self.escrows.items():
            escrow.check_invariants()
            assert escrow.held >= 0
            assert escrow.released_total + escrow.refunded <= escrow.charged
            assert self.ledger.balance(Accounts.escrow(m), "EUR") == escrow.held


TestEscrowBooks = EscrowBooks.TestCase
TestEscrowBooks.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
