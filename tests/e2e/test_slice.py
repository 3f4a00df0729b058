"""The walking skeleton's vertical slice across the three services, end to end:
freelancer mode — proposal accepted, the freelancer adds a milestone (the customer is
emailed), the customer pays (the card is charged in localstripe), the milestone is funded
and the freelancer is emailed."""

from __future__ import annotations

import uuid
from typing import Any

from cairn_devstack.stack import wait_until

from tests.e2e.conftest import Env

BRANDING = {
    "display_name": "Fjord Talent",
    "from_address": "hello@fjord.test",
    "support_address": "help@fjord.test",
    "accent_colour": "#0a7cff",
}


def marketplace(env: Env, **settings: Any) -> tuple[str, Any, Any, Any]:
    """A fresh marketplace with an operator, a customer and a freelancer."""
    mk = f"mk-{uuid.uuid4().hex[:8]}"
    operator = env.cairn.as_user("operator", "op-1", mk)
    customer = env.cairn.as_user(
        "customer", f"cust-{mk}", mk, email=f"cust@{mk}.test", name="Cleo Customer"
    )
    freelancer = env.cairn.as_user(
        "freelancer", f"free-{mk}", mk, email=f"free@{mk}.test", name="Finn Freelancer"
    )
    operator.put(
        "contracts",
        f"/v1/marketplaces/{mk}/settings",
        {"currency": "EUR", "platform_fee_bps": 1000, "branding": BRANDING} | settings,
    )
    return mk, operator, customer, freelancer


def save_card(env: Env, customer: Any, number: str = "4242424242424242") -> None:
    """The front end tokenises a card with Stripe.js; payments attaches it to the customer."""
    pm = env.stripe.client().v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    customer.post(
        "payments",
        "/v1/payment-profiles/me/payment-methods",
        {"payment_method_id": pm.id},
        expect=200,
    )


def live_contract(customer: Any, freelancer: Any) -> str:
    job = customer.post(
        "contracts",
        "/v1/jobs",
        {"title": "Brand identity", "description": "Logo and colours"},
        expect=201,
    )
    proposal = freelancer.post(
        "contracts",
        f"/v1/jobs/{job['id']}/proposals",
        {"cover_letter": "I design logos."},
        expect=201,
    )
    accepted = customer.post("contracts", f"/v1/contracts/{proposal['id']}/accept")
    assert accepted["state"] == "live"
    return str(proposal["id"])


def mails(env: Env, to: str) -> list[str]:
    return sorted(m["subject"] for m in env.mail.messages() if to in m["to"])


def test_freelancer_mode_slice_funds_the_milestone_and_emails_each_party(env: Env) -> None:
    mk, _, customer, freelancer = marketplace(env)
    save_card(env, customer)
    contract_id = live_contract(customer, freelancer)
    charges_before = env.stripe.stats()["charges"]

    milestone = freelancer.post(
        "contracts",
        f"/v1/contracts/{contract_id}/milestones",
        {"title": "Logo concepts", "amount": 50000},
        expect=201,
    )
    assert milestone["state"] == "approved", "freelancer-mode milestones need no approval"
    wait_until(
        lambda: any("Logo concepts" in s for s in mails(env, f"cust@{mk}.test")),
        what="the customer's 'milestone created' email",
    )

    paid = customer.post("contracts", f"/v1/milestones/{milestone['id']}/pay")
    assert paid["state"] == "funding"

    def state() -> str:
        return str(
            customer.get("contracts", f"/v1/milestones/{milestone['id']}/history")[-1]["to_state"]
        )

    wait_until(lambda: state() == "funded", timeout=30, what="the milestone to be funded")
    assert env.stripe.stats()["charges"] == charges_before + 1
    charges = env.stripe.client().v1.charges.list(params={"limit": 100}).data
    ours = [c for c in charges if c.to_dict().get("transfer_group") == milestone["id"]]
    assert [(c.amount, c.currency.upper()) for c in ours] == [(50000, "EUR")]

    wait_until(
        lambda: any(
            "Logo concepts" in s
            for s in mails(env, f"free@{mk}.test")
            if "fund" in s.lower() or "start" in s.lower()
        ),
        what="the freelancer's 'funded, start work' email",
    )
    branded = [m for m in env.mail.messages() if f"free@{mk}.test" in m["to"]]
    assert all("Fjord Talent" in (m["html"] or "") for m in branded), branded[0]["html"]
    assert all("hello@fjord.test" in m["from"] for m in branded), [m["from"] for m in branded]
