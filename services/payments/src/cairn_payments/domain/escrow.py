"""One milestone's escrow: a state machine whose every movement is a ledger entry.

The guards run before anything changes, so a refused movement leaves the escrow and the
ledger as they were. Invariants after any sequence of movements: the escrow never holds a
negative amount, and what went to the freelancer and the platform plus what went back to
the customer never exceeds what was charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cairn_payments.domain.errors import EscrowRuleBroken
from cairn_payments.domain.ledger import Accounts, LedgerEntry, move

EscrowState = Literal[
    "funding",  # a charge is being made
    "action_required",  # the customer must authenticate (SCA)
    "failed",  # the last funding attempt failed; a new attempt may follow
    "funded",  # the money is held
    "release_pending",  # release asked for; the freelancer cannot receive payouts yet
    "released",  # transferred to the freelancer (less the fee)
    "refunding",  # a refund has started (e.g. a reversal was made, the refund not yet)
    "refunded",  # all of it went back to the customer
    "splitting",  # a split has started (transfer made, refund not yet)
    "settled",  # a dispute split was carried out
    "reconciling",  # a Stripe call's outcome is unknown; nothing else moves
]
Operation = Literal["charge", "release", "refund", "split"]
ChargebackPolicy = Literal["freelancer", "platform"]

HOLDING: frozenset[str] = frozenset({"funded", "release_pending"})


def platform_fee(amount: int, fee_bps: int) -> int:
    """The platform's fee on ``amount``: basis points, rounded down (in the freelancer's
    favour), so fee + freelancer's part always add up to ``amount`` exactly."""
    if amount < 0 or not 0 <= fee_bps <= 10_000:
        raise EscrowRuleBroken("fee needs a non-negative amount and 0..10000 basis points")
    return amount * fee_bps // 10_000


@dataclass
class Escrow:
    """The money of one milestone, from charge to release, refund or split."""

    milestone_id: str
    marketplace_id: str
    contract_id: str
    customer_id: str
    freelancer_id: str
    amount: int
    currency: str
    state: EscrowState = "funding"
    attempt: int = 1
    platform_fee_bps: int = 0
    payment_intent_id: str | None = None
    charge_id: str | None = None
    transfer_id: str | None = None
    reversal_id: str | None = None
    refund_id: str | None = None
    stripe_dispute_id: str | None = None  # a chargeback
    split_dispute_id: str | None = None  # the marketplace dispute a split settles
    # Amounts, all int minor units.
    charged: int = 0
    held: int = 0
    fee: int = 0
    transferred: int = 0
    refunded: int = 0
    chargeback: int = 0
    chargeback_owed_by_freelancer: int = 0
    frozen: bool = False
    # While reconciling (or in a multi-step movement): what is being done.
    operation: Operation | None = None
    # The state to go back to once a reconciled call's outcome is known.
    resume_state: EscrowState | None = None
    # A split's parts (gross freelancer part before the fee; customer part).
    split_to_freelancer: int = 0
    split_to_customer: int = 0
    # Who bears a chargeback on money already paid out (the contract's policy).
    chargeback_after_release: ChargebackPolicy = "freelancer"

    # ------------------------------------------------------------------ guards
    @property
    def released_total(self) -> int:
        """What left the escrow for the freelancer and the platform."""
        return self.fee + self.transferred

    def check_invariants(self) -> None:
        """Raise if the books of this escrow are impossible."""
        if self.held < 0:
            raise EscrowRuleBroken(f"escrow {self.milestone_id} holds {self.held} < 0")
        if self.released_total + self.refunded > self.charged:
            raise EscrowRuleBroken(
                f"escrow {self.milestone_id}: released {self.released_total} + refunded "
                f"{self.refunded} exceeds charged {self.charged}"
            )

    def _require_movable(self, what: str) -> None:
        if self.frozen:
            raise EscrowRuleBroken(f"cannot {what}: the escrow is frozen by a chargeback")
        if self.state == "reconciling":
            raise EscrowRuleBroken(f"cannot {what}: an earlier Stripe call is being reconciled")

    def may_fund(self, attempt: int) -> bool:
        """True when a funding request for ``attempt`` should charge the card."""
        if self.state == "funding" and self.payment_intent_id is None:
            return attempt >= self.attempt
        if self.state in ("failed", "action_required"):
            return attempt > self.attempt
        return False

    # ----------------------------------------------------------------- funding
    def begin_funding(self, attempt: int) -> None:
        """Start charging attempt ``attempt``."""
        if not self.may_fund(attempt):
            raise EscrowRuleBroken(f"escrow {self.milestone_id} is {self.state}; cannot fund")
        self.state = "funding"
        self.attempt = attempt
        self.payment_intent_id = None
        self.operation = "charge"

    def funding_succeeded(self, payment_intent_id: str, charge_id: str) -> list[LedgerEntry]:
        """The charge went through: the money is held."""
        if self.charged:
            return []  # already recorded (a webhook after the synchronous answer)
        if self.state not in ("funding", "action_required", "reconciling", "failed"):
            raise EscrowRuleBroken(f"escrow {self.milestone_id} is {self.state}; cannot fund")
        self.payment_intent_id = payment_intent_id
        self.charge_id = charge_id
        self.charged = self.held = self.amount
        self.state = "funded"
        self.operation = None
        return [
            move(
                f"charge:{charge_id}",
                "charge",
                marketplace_id=self.marketplace_id,
                milestone_id=self.milestone_id,
                currency=self.currency,
                amount=self.amount,
                source=Accounts.customer_funding(self.marketplace_id),
                destination=Accounts.escrow(self.milestone_id),
            )
        ]

    def funding_failed(self, payment_intent_id: str | None) -> None:
        """The charge was refused; the customer may pay again (a new attempt)."""
        if self.charged:
            raise EscrowRuleBroken(f"escrow {self.milestone_id} is already funded")
        self.state = "failed"
        self.operation = None
        if payment_intent_id:
            self.payment_intent_id = payment_intent_id

    def funding_needs_action(self, payment_intent_id: str) -> None:
        """The bank wants the customer to authenticate; a webhook completes it."""
        self.state = "action_required"
        self.operation = None
        self.payment_intent_id = payment_intent_id

    def to_reconciling(self, operation: Operation) -> None:
        """A Stripe call's outcome is unknown; hold everything until it is looked up."""
        if self.state != "reconciling":
            self.resume_state = self.state
        self.state = "reconciling"
        self.operation = operation

    def resume(self) -> None:
        """Leave reconciling for the state the interrupted movement started from."""
        if self.state == "reconciling":
            self.state = self.resume_state or "funded"
            self.resume_state = None

    # ----------------------------------------------------------------- release
    def release_parts(self, fee_bps: int) -> tuple[int, int]:
        """(fee, amount to the freelancer) of a release; raises unless it may happen."""
        self._require_movable("release")
        if self.state not in HOLDING:
            raise EscrowRuleBroken(f"escrow {self.milestone_id} is {self.state}; cannot release")
        fee = platform_fee(self.held, fee_bps)
        return fee, self.held - fee

    def release_waits(self, fee_bps: int) -> bool:
        """The freelancer cannot receive payouts yet; True if this is news."""
        self.release_parts(fee_bps)
        self.platform_fee_bps = fee_bps
        news = self.state != "release_pending"
        self.state = "release_pending"
        return news

    def released(self, transfer_id: str, fee: int, net: int) -> list[LedgerEntry]:
        """The transfer went out; the fee stays on the platform."""
        if self.transfer_id is not None:
            return []
        if fee + net != self.held:
            raise EscrowRuleBroken("a release moves exactly what the escrow holds")
        entries = self._fee_and_transfer(transfer_id, fee, net)
        self.state = "released"
        self.operation = None
        return entries

    def _fee_and_transfer(self, transfer_id: str, fee: int, net: int) -> list[LedgerEntry]:
        if fee < 0 or net < 0 or fee + net > self.held:
            raise EscrowRuleBroken("cannot move more than the escrow holds")
        entries: list[LedgerEntry] = []
        common = {
            "marketplace_id": self.marketplace_id,
            "milestone_id": self.milestone_id,
            "currency": self.currency,
        }
        if fee:
            entries.append(
                move(
                    f"fee:{self.milestone_id}",
                    "fee",
                    amount=fee,
                    source=Accounts.escrow(self.milestone_id),
                    destination=Accounts.platform_fees(self.marketplace_id),
                    **common,
                )
            )
        if net:
            entries.append(
                move(
                    f"transfer:{transfer_id}",
                    "transfer",
                    amount=net,
                    source=Accounts.escrow(self.milestone_id),
                    destination=Accounts.freelancer_payable(self.freelancer_id),
                    **common,
                )
            )
        self.transfer_id = transfer_id
        self.fee += fee
        self.transferred += net
        self.held -= fee + net
        return entries

    # ------------------------------------------------------------------ refund
    def refund_parts(self) -> tuple[int, int]:
        """(amount to reverse from the freelancer, amount to refund) of a full refund."""
        if self.frozen:
            raise EscrowRuleBroken("cannot refund: the escrow is frozen by a chargeback")
        if self.state not in (*HOLDING, "released", "refunding"):
            raise EscrowRuleBroken(f"escrow {self.milestone_id} is {self.state}; cannot refund")
        to_reverse = self.transferred
        return to_reverse, self.held + to_reverse + self.fee

    def transfer_reversed(self, reversal_id: str) -> list[LedgerEntry]:
        """The transfer was taken back (with the fee) so the whole charge can be refunded."""
        if self.reversal_id is not None:
            return []
        common = {
            "marketplace_id": self.marketplace_id,
            "milestone_id": self.milestone_id,
            "currency": self.currency,
        }
        entries: list[LedgerEntry] = []
        if self.transferred:
            entries.append(
                move(
                    f"reversal:{reversal_id}",
                    "reversal",
                    amount=self.transferred,
                    source=Accounts.freelancer_payable(self.freelancer_id),
                    destination=Accounts.escrow(self.milestone_id),
                    **common,
                )
            )
        if self.fee:
            entries.append(
                move(
                    f"fee_return:{self.milestone_id}",
                    "fee_return",
                    amount=self.fee,
                    source=Accounts.platform_fees(self.marketplace_id),
                    destination=Accounts.escrow(self.milestone_id),
                    **common,
                )
            )
        self.held += self.transferred + self.fee
        self.transferred = self.fee = 0
        self.reversal_id = reversal_id
        self.state = "refunding"
        return entries

    def refunded_money(self, refund_id: str, amount: int, *, final: bool) -> list[LedgerEntry]:
        """``amount`` went back to the customer's card (``final``: nothing more follows)."""
        if self.refund_id is not None:
            return []
        if amount <= 0 or amount > self.held:
            raise EscrowRuleBroken(
                f"refund of {amount} exceeds what escrow {self.milestone_id} holds ({self.held})"
            )
        entry = move(
            f"refund:{refund_id}",
            "refund",
            marketplace_id=self.marketplace_id,
            milestone_id=self.milestone_id,
            currency=self.currency,
            amount=amount,
            source=Accounts.escrow(self.milestone_id),
            destination=Accounts.refunds(self.marketplace_id),
        )
        self.refund_id = refund_id
        self.refunded += amount
        self.held -= amount
        if final:
            self.state = "refunded"
            self.operation = None
        return [entry]

    # ------------------------------------------------------------------- split
    def split_parts(self, to_freelancer: int, to_customer: int, fee_bps: int) -> tuple[int, int]:
        """(fee, net to the freelancer) of a split; raises unless the parts fit exactly."""
        self._require_movable("split")
        if self.state not in HOLDING:
            raise EscrowRuleBroken(f"escrow {self.milestone_id} is {self.state}; cannot split")
        if to_freelancer < 0 or to_customer <= 0 or to_freelancer + to_customer != self.held:
            raise EscrowRuleBroken(
                f"split {to_freelancer} + {to_customer} must add up to {self.held}"
            )
        fee = platform_fee(to_freelancer, fee_bps)
        self.split_to_freelancer, self.split_to_customer = to_freelancer, to_customer
        self.platform_fee_bps = fee_bps
        return fee, to_freelancer - fee

    def split_transferred(self, transfer_id: str, fee: int, net: int) -> list[LedgerEntry]:
        """The freelancer's part of a split was transferred."""
        if self.transfer_id is not None:
            return []
        entries = self._fee_and_transfer(transfer_id, fee, net)
        self.state = "splitting"
        self.operation = "split"
        return entries

    def split_refunded(self, refund_id: str) -> list[LedgerEntry]:
        """The customer's part of a split was refunded; the split is done."""
        entries = self.refunded_money(refund_id, self.held, final=False)
        if entries:
            self.state = "settled"
            self.operation = None
        return entries

    # -------------------------------------------------------------- chargeback
    def chargeback_opened(self, stripe_dispute_id: str, amount: int) -> list[LedgerEntry]:
        """The customer's bank took ``amount`` back: freeze what is held and take it from
        there first; what already went to the freelancer is recorded as owed by them under
        the ``freelancer`` policy (the platform bears it under ``platform``); the rest is the
        platform's loss."""
        if self.stripe_dispute_id is not None:
            return []
        amount = min(amount, self.charged - self.refunded - self.chargeback)
        self.stripe_dispute_id = stripe_dispute_id
        self.frozen = True
        if amount <= 0:
            return []
        common = {
            "marketplace_id": self.marketplace_id,
            "milestone_id": self.milestone_id,
            "currency": self.currency,
        }
        destination = Accounts.chargebacks(self.marketplace_id)
        from_escrow = min(amount, self.held)
        from_freelancer = (
            min(amount - from_escrow, self.transferred)
            if self.chargeback_after_release == "freelancer"
            else 0
        )
        from_platform = amount - from_escrow - from_freelancer
        sources = (
            (Accounts.escrow(self.milestone_id), from_escrow, "escrow"),
            (Accounts.freelancer_receivable(self.freelancer_id), from_freelancer, "freelancer"),
            (Accounts.platform_fees(self.marketplace_id), from_platform, "platform"),
        )
        entries = [
            move(
                f"chargeback:{stripe_dispute_id}:{tag}",
                "chargeback",
                amount=part,
                source=source,
                destination=destination,
                **common,
            )
            for source, part, tag in sources
            if part > 0
        ]
        self.held -= from_escrow
        self.chargeback += amount
        self.chargeback_owed_by_freelancer += from_freelancer
        return entries
