"""A fake of the Stripe gateway for the use-case tests: objects keyed by idempotency key
(like Stripe's replay), amounts checked like Stripe (no over-refund, no over-transfer),
and scripted unknown outcomes."""

from __future__ import annotations

from typing import Any

from cairn_payments.adapters.stripe_gateway import (
    ChargeResult,
    StripeRefused,
    StripeUnknownOutcome,
)


class FakeStripe:
    """Stripe as far as the payments service uses it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.fail_next: dict[str, Exception] = {}
        self.charges: dict[str, ChargeResult] = {}  # by idempotency key
        self.charge_amounts: dict[str, int] = {}  # charge id -> amount
        self.refunds: dict[str, tuple[str, int, str]] = {}  # key -> (id, amount, charge)
        self.transfers: dict[str, tuple[str, int, str]] = {}  # key -> (id, amount, group)
        self.reversals: dict[str, tuple[str, int, str]] = {}  # key -> (id, amount, transfer)
        self.charge_result = "succeeded"
        self.last_metadata: dict[str, str] = {}
        self.cancelled: set[str] = set()
        self.ready_accounts: set[str] = set()  # connected accounts that can receive payouts

    def _maybe_fail(self, kind: str) -> None:
        if kind in self.fail_next:
            raise self.fail_next.pop(kind)

    # -------------------------------------------------------------- charges
    async def charge(self, *, key: str, metadata: Any, amount: int, **_: Any) -> ChargeResult:
        self.calls.append(("charge", key))
        self._maybe_fail("charge_before")
        if key not in self.charges:
            n = len(self.charges) + 1
            ok = self.charge_result == "succeeded"
            self.charges[key] = ChargeResult(
                status=self.charge_result,  # type: ignore[arg-type]
                payment_intent_id=f"pi_{n}",
                charge_id=f"ch_{n}" if self.charge_result != "requires_action" else None,
                client_secret=f"pi_{n}_secret",
                failure_code=None if ok else "card_declined",
            )
            if ok:
                self.charge_amounts[f"ch_{n}"] = amount
        self.last_metadata = dict(metadata)
        self._maybe_fail("charge")  # an unknown outcome *after* Stripe did it
        return self.charges[key]

    async def find_charge(self, *, milestone_id: str, attempt: int, **_: Any) -> Any:
        self.calls.append(("find_charge", milestone_id))
        self._maybe_fail("find")
        return next(
            (c for k, c in self.charges.items() if k.endswith(f":{milestone_id}:{attempt}")), None
        )

    def authenticate(self, payment_intent_id: str, amount: int) -> str | None:
        """The customer passed 3-D Secure: the PaymentIntent's charge now exists."""
        if payment_intent_id in self.cancelled:
            return None
        for key, result in self.charges.items():
            if result.payment_intent_id == payment_intent_id and result.charge_id is None:
                charge_id = f"ch_{payment_intent_id[3:]}"
                self.charges[key] = ChargeResult(
                    status="succeeded", payment_intent_id=payment_intent_id, charge_id=charge_id
                )
                self.charge_amounts[charge_id] = amount
                return charge_id
        return None

    async def cancel_payment_intent(self, payment_intent_id: str) -> None:
        self.calls.append(("cancel", payment_intent_id))
        self._maybe_fail("cancel")
        self.cancelled.add(payment_intent_id)

    def kept_charges(self) -> list[str]:
        """Charges not wholly refunded by a stale-attempt refund."""
        stale = {c for k, (_, a, c) in self.refunds.items() if ":stale-refund:" in k}
        return [c for c in self.charge_amounts if c not in stale]

    # -------------------------------------------------------------- transfers
    def _transferable(self, charge_id: str) -> int:
        refunded = sum(a for _, a, c in self.refunds.values() if c == charge_id)
        return self.charge_amounts.get(charge_id, 0) - refunded

    async def transfer(
        self, *, key: str, amount: int, transfer_group: str, source_transaction: str, **_: Any
    ) -> str:
        self.calls.append(("transfer", key))
        self._maybe_fail("transfer_before")
        if key not in self.transfers:
            if amount > self._transferable(source_transaction):
                raise StripeRefused("insufficient funds in the source transaction")
            self.transfers[key] = (f"tr_{len(self.transfers) + 1}", amount, transfer_group)
        self._maybe_fail("transfer")
        return self.transfers[key][0]

    async def find_transfer(self, *, transfer_group: str, operation: str) -> str | None:
        self.calls.append(("find_transfer", transfer_group))
        self._maybe_fail("find")
        step = "release" if operation == "release" else "split-transfer"
        found = self.transfers.get(f"cairn:{step}:{transfer_group}")
        return found[0] if found else None

    async def reverse_transfer(self, *, key: str, transfer_id: str, amount: int, **_: Any) -> str:
        self.calls.append(("reverse", key))
        if key not in self.reversals:
            self.reversals[key] = (f"trr_{len(self.reversals) + 1}", amount, transfer_id)
        self._maybe_fail("reverse")
        return self.reversals[key][0]

    async def find_reversal(self, *, transfer_id: str) -> str | None:
        self.calls.append(("find_reversal", transfer_id))
        self._maybe_fail("find")
        return next((r for r, _, t in self.reversals.values() if t == transfer_id), None)

    # -------------------------------------------------------------- refunds
    async def refund(self, *, key: str, charge_id: str, amount: int, **_: Any) -> str:
        self.calls.append(("refund", key))
        self._maybe_fail("refund_before")
        if key not in self.refunds:
            if amount > self._transferable(charge_id):
                raise StripeRefused("Refund amount is greater than unrefunded amount on charge")
            self.refunds[key] = (f"re_{len(self.refunds) + 1}", amount, charge_id)
        self._maybe_fail("refund")
        return self.refunds[key][0]

    async def find_refund(self, *, charge_id: str, operation: str) -> str | None:
        self.calls.append(("find_refund", charge_id))
        self._maybe_fail("find")
        step = "split-refund" if operation == "split" else operation  # as the keys name them
        return next(
            (r for k, (r, _, c) in self.refunds.items() if c == charge_id and f":{step}:" in k),
            None,
        )

    async def payouts_enabled(self, account_id: str) -> bool:
        self.calls.append(("payouts_enabled", account_id))
        self._maybe_fail("payouts")
        return account_id in self.ready_accounts

    # ------------------------------------------------------------ inspection
    def money_out(self) -> int:
        """Refunded plus transferred (net of reversals), over all objects."""
        refunded = sum(a for _, a, _ in self.refunds.values())
        transferred = sum(a for _, a, _ in self.transfers.values())
        reversed_ = sum(a for _, a, _ in self.reversals.values())
        return refunded + transferred - reversed_


def unknown(what: str = "timed out") -> StripeUnknownOutcome:
    """An unknown outcome (timeout, 5xx)."""
    return StripeUnknownOutcome(what)
