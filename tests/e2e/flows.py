"""Driving one contract through the HTTP APIs as its customer, freelancer and operator,
and reading back what the outside world saw: Stripe objects, the ledger, the emails."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from cairn_devstack.stack import wait_until

from tests.e2e.client import User
from tests.e2e.conftest import Env

BRANDING = {
    "display_name": "Fjord Talent",
    "from_address": "hello@fjord.test",
    "support_address": "help@fjord.test",
    "accent_colour": "#0a7cff",
}
OPERATORS = "operators@cairn.localhost"
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"


@dataclass
class Flow:
    """One marketplace, one customer, one freelancer, one contract."""

    env: Env
    mk: str
    operator: User
    customer: User
    freelancer: User
    contract_id: str = ""

    @property
    def customer_email(self) -> str:
        return f"cust@{self.mk}.test"

    @property
    def freelancer_email(self) -> str:
        return f"free@{self.mk}.test"

    @property
    def operators_email(self) -> str:
        """The marketplace's support address, where its operator alerts go (issue 16)."""
        return f"ops@{self.mk}.test"

    # --- set-up -----------------------------------------------------------------------------

    @classmethod
    def open(
        cls, env: Env, *, onboard: bool = True, card: str | None = GOOD_CARD, **settings: Any
    ) -> Flow:
        """A new marketplace with ``settings``, a customer with a saved card and a
        freelancer who can receive payouts (unless told otherwise)."""
        mk = f"mk-{uuid.uuid4().hex[:8]}"
        flow = cls(
            env,
            mk,
            env.cairn.as_user("operator", "op-1", mk),
            env.cairn.as_user(
                "customer", f"cust-{mk}", mk, email=f"cust@{mk}.test", name="Cleo Customer"
            ),
            env.cairn.as_user(
                "freelancer", f"free-{mk}", mk, email=f"free@{mk}.test", name="Finn Freelancer"
            ),
        )
        flow.operator.put(
            "contracts",
            f"/v1/marketplaces/{mk}/settings",
            {
                "currency": "EUR",
                "platform_fee_bps": 1000,
                "branding": BRANDING | {"support_address": f"ops@{mk}.test"},
            }
            | settings,
        )
        if card:
            flow.save_card(card)
        if onboard:
            flow.onboard()
        return flow

    def save_card(self, number: str) -> None:
        pm = self.env.stripe.client().v1.payment_methods.create(
            params={
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            }
        )
        self.customer.post(
            "payments", "/v1/payment-profiles/me/payment-methods", {"payment_method_id": pm.id}
        )

    def onboard(self) -> str:
        """The freelancer finishes Stripe onboarding: payouts are enabled."""
        link = self.freelancer.post(
            "payments",
            "/v1/payment-profiles/me/onboarding-link",
            {
                "refresh_url": "https://fjord.test/refresh",
                "return_url": "https://fjord.test/return",
            },
        )
        account = str(link["stripe_account_id"])
        self.env.stripe.enable_payouts(account)
        wait_until(
            lambda: any(
                p["payouts_enabled"]
                for p in self.freelancer.get("payments", "/v1/payment-profiles/me")
            ),
            what="payments to learn the payouts are enabled",
        )
        return account

    def propose(self) -> str:
        job = self.customer.post("contracts", "/v1/jobs", {"title": "Brand identity"}, expect=201)
        proposal = self.freelancer.post(
            "contracts",
            f"/v1/jobs/{job['id']}/proposals",
            {"cover_letter": "I design logos."},
            expect=201,
        )
        self.contract_id = str(proposal["id"])
        return self.contract_id

    def accept(self) -> dict[str, Any]:
        result: dict[str, Any] = self.customer.post(
            "contracts", f"/v1/contracts/{self.contract_id}/accept"
        )
        return result

    # --- milestones ---------------------------------------------------------------------------

    def create(self, by: User, title: str, amount: int, expect: int = 201) -> dict[str, Any]:
        result: dict[str, Any] = by.post(
            "contracts",
            f"/v1/contracts/{self.contract_id}/milestones",
            {"title": title, "amount": amount},
            expect=expect,
        )
        return result

    def act(
        self, by: User, milestone_id: str, command: str, body: Any = None, expect: int = 200
    ) -> dict[str, Any]:
        result: dict[str, Any] = by.post(
            "contracts", f"/v1/milestones/{milestone_id}/{command}", body, expect=expect
        )
        return result

    def approve(self, milestone: dict[str, Any]) -> dict[str, Any]:
        return self.act(
            self.freelancer, milestone["id"], "approve", {"version": milestone["version"]}
        )

    def milestone(self, milestone_id: str) -> dict[str, Any]:
        contract = self.customer.get("contracts", f"/v1/contracts/{self.contract_id}")
        found: dict[str, Any] = next(m for m in contract["milestones"] if m["id"] == milestone_id)
        return found

    def reach(self, milestone_id: str, state: str, timeout: float = 90) -> dict[str, Any]:
        wait_until(
            lambda: self.milestone(milestone_id)["state"] == state,
            timeout=timeout,
            what=f"milestone {milestone_id} to be {state} "
            f"(now {self.milestone(milestone_id)['state']})",
        )
        return self.milestone(milestone_id)

    # --- what the outside world saw ------------------------------------------------------------

    def stripe(self, milestone_id: str) -> dict[str, list[int]]:
        """Amounts of the Stripe objects of one milestone: succeeded charges, transfers
        (net of reversals), refunds."""
        client = self.env.stripe.client()
        charges = [
            c.to_dict()
            for c in client.v1.charges.list(params={"limit": 100}).auto_paging_iter()
            if c.to_dict().get("transfer_group") == milestone_id
        ]
        ids = {c["id"] for c in charges}
        refunds = [
            r.to_dict()
            for r in client.v1.refunds.list(params={"limit": 100}).auto_paging_iter()
            if r.to_dict().get("charge") in ids
        ]
        transfers = [
            t.to_dict()
            for t in client.v1.transfers.list(
                params={"limit": 100, "transfer_group": milestone_id}
            ).auto_paging_iter()
        ]
        return {
            "charges": sorted(c["amount"] for c in charges if c["status"] == "succeeded"),
            "transfers": sorted(t["amount"] - t.get("amount_reversed", 0) for t in transfers),
            "refunds": sorted(r["amount"] for r in refunds),
        }

    def escrow(self, milestone_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.operator.get("payments", f"/v1/escrow/{milestone_id}")
        return result

    def ledger_total(self) -> int:
        return int(self.operator.get("payments", "/v1/ledger/balances")["total"])

    def emails(self) -> list[tuple[str, str]]:
        """(recipient, subject) of every email sent about this marketplace, sorted."""
        return sorted(
            (to, m["subject"])
            for m in self.env.mail.messages()
            for to in m["to"]
            if self.mk in to or (to == OPERATORS and self.mk in m.get("text", ""))
        )

    def settle_emails(self, count: int) -> list[tuple[str, str]]:
        """Wait until ``count`` emails went out, and a moment more for any extra one."""

        def failed() -> list[tuple[str, str | None]]:
            items = self.operator.get("notifications", "/v1/deliveries?status=failed&limit=500")[
                "items"
            ]
            return [(d["template"], d["last_error"]) for d in items]

        wait_until(
            lambda: len(self.emails()) >= count,
            timeout=90,
            what=f"{count} emails (have {self.emails()}; failed: {failed()})",
        )
        wait_until(lambda: self.deliveries_settled(), timeout=30, what="the email outbox")
        return self.emails()

    def deliveries_settled(self) -> bool:
        items = self.operator.get("notifications", "/v1/deliveries?limit=500")["items"]
        return all(d["status"] in ("delivered", "failed") for d in items)
