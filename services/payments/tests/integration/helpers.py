"""Building a marketplace's parties and their contract events for the payments tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import stripe
from cairn_chassis.auth import mint_token
from cairn_payments.config import Settings
from cairn_schemas.base import Actor
from cairn_schemas.events import (
    MilestoneFundingRequested,
    MilestoneRefundOrdered,
    MilestoneReleaseRequested,
    MilestoneSplitOrdered,
)

CARD_OK = "4242424242424242"
CARD_DECLINED_ON_CHARGE = "4000000000000341"
CARD_SCA = "4000002760003184"


def new_id(prefix: str) -> str:
    """A fresh id with a readable prefix."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@dataclass
class Deal:
    """One customer, one freelancer and one milestone in a fresh marketplace."""

    marketplace_id: str
    customer_id: str
    freelancer_id: str
    contract_id: str
    milestone_id: str
    amount: int = 10_000
    currency: str = "USD"
    fee_bps: int = 1_000
    chargeback_after_release: Literal["freelancer", "platform"] = "freelancer"

    @classmethod
    def new(cls, amount: int = 10_000) -> Deal:
        return cls(
            marketplace_id=new_id("mkt"),
            customer_id=new_id("cus"),
            freelancer_id=new_id("fre"),
            contract_id=new_id("ctr"),
            milestone_id=new_id("mst"),
            amount=amount,
        )

    def token(self, settings: Settings, role: str) -> str:
        sub = self.customer_id if role == "customer" else self.freelancer_id
        if role == "operator":
            sub = "op_1"
        return mint_token(settings, sub=sub, role=role, marketplace=self.marketplace_id)  # type: ignore[arg-type]

    def _milestone(self, state: str, role: str) -> dict[str, Any]:
        return {
            "marketplace_id": self.marketplace_id,
            "contract_id": self.contract_id,
            "milestone_id": self.milestone_id,
            "title": "Wireframes",
            "amount": self.amount,
            "currency": self.currency,
            "version": 3,
            "state": state,
            "actor": Actor(user_id=self.customer_id, role=role),  # type: ignore[arg-type]
        }

    def funding_requested(self, attempt: int = 1) -> MilestoneFundingRequested:
        return MilestoneFundingRequested(
            **self._milestone("funding", "customer"),
            customer_id=self.customer_id,
            freelancer_id=self.freelancer_id,
            platform_fee_bps=self.fee_bps,
            attempt=attempt,
            chargeback_after_release=self.chargeback_after_release,
        )

    def release_requested(self) -> MilestoneReleaseRequested:
        return MilestoneReleaseRequested(
            **self._milestone("releasing", "customer"),
            trigger="customer",
            platform_fee_bps=self.fee_bps,
            freelancer_id=self.freelancer_id,
        )

    def refund_ordered(self) -> MilestoneRefundOrdered:
        return MilestoneRefundOrdered(
            **self._milestone("refunding", "freelancer"), reason="freelancer_refund"
        )

    def split_ordered(self, to_freelancer: int) -> MilestoneSplitOrdered:
        return MilestoneSplitOrdered(
            **self._milestone("disputed", "operator"),
            dispute_id=new_id("dsp"),
            amount_to_freelancer=to_freelancer,
            amount_to_customer=self.amount - to_freelancer,
            platform_fee_bps=self.fee_bps,
            freelancer_id=self.freelancer_id,
        )


def tokenised_card(client: stripe.StripeClient, number: str) -> str:
    """What Stripe.js would hand the front end: a PaymentMethod id for ``number``."""
    pm = client.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},  # type: ignore[typeddict-item]
        }
    )
    return str(pm.id)


async def save_card(
    http: httpx.AsyncClient,
    settings: Settings,
    deal: Deal,
    client: stripe.StripeClient,
    number: str = CARD_OK,
) -> dict[str, Any]:
    """The customer saves a card through the payments API."""
    headers = {"Authorization": f"Bearer {deal.token(settings, 'customer')}"}
    r = await http.post("/v1/payment-profiles/me/setup-intents", headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["client_secret"]
    pm = tokenised_card(client, number)
    r = await http.post(
        "/v1/payment-profiles/me/payment-methods",
        json={"payment_method_id": pm},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["default_payment_method_id"] == pm
    return body


async def onboard_freelancer(http: httpx.AsyncClient, settings: Settings, deal: Deal) -> str:
    """The freelancer asks for an onboarding link; returns their connected account id."""
    headers = {"Authorization": f"Bearer {deal.token(settings, 'freelancer')}"}
    r = await http.post(
        "/v1/payment-profiles/me/onboarding-link",
        json={"refresh_url": "https://mkt.example/refresh", "return_url": "https://mkt.example/ok"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["url"]
    return str(body["stripe_account_id"])


async def escrow_of(http: httpx.AsyncClient, settings: Settings, deal: Deal) -> dict[str, Any]:
    """The escrow as the customer sees it."""
    headers = {"Authorization": f"Bearer {deal.token(settings, 'customer')}"}
    r = await http.get(f"/v1/escrow/{deal.milestone_id}", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def balances_of(http: httpx.AsyncClient, settings: Settings, deal: Deal) -> dict[str, int]:
    """The marketplace's ledger balances as its operator sees them (total must be 0)."""
    headers = {"Authorization": f"Bearer {deal.token(settings, 'operator')}"}
    r = await http.get("/v1/ledger/balances", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 0
    return {b["account"]: b["balance"] for b in body["balances"]}


async def report_of(http: httpx.AsyncClient, settings: Settings, deal: Deal) -> dict[str, Any]:
    """The marketplace's reconciliation report (ledger against Stripe)."""
    headers = {"Authorization": f"Bearer {deal.token(settings, 'operator')}"}
    r = await http.get("/v1/reconciliation/report", headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body
