"""Milestone lifecycles the chaos harness runs, each driven only through the HTTP APIs and
each with the end it intends: the final milestone state and the Stripe money it implies."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import stripe as stripe_errors
from cairn_devstack.testing import StripeServer

from tests.chaos.api import Api, ScenarioError

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # attaches, declined when charged

MARKETPLACES: dict[str, dict[str, Any]] = {
    "chaos-freelancer": {"milestone_creator": "freelancer"},
    "chaos-customer": {"milestone_creator": "customer"},
    "chaos-skip": {
        "milestone_creator": "customer",
        "skip_freelancer_approval": True,
        "allow_delete_until_paid": True,
    },
    "chaos-charge-on-approval": {
        "milestone_creator": "customer",
        "charge_on_freelancer_approval": True,
    },
}
FEE_BPS = 1000

# kind -> (marketplace, final state)
KINDS: dict[str, tuple[str, str]] = {
    "freelancer_release": ("chaos-freelancer", "released"),
    "customer_release": ("chaos-customer", "released"),
    "skip_release_from_funded": ("chaos-skip", "released"),
    "charge_on_approval_release": ("chaos-charge-on-approval", "released"),
    "freelancer_refund": ("chaos-freelancer", "refunded"),
    "dispute_split": ("chaos-customer", "settled"),
    "dispute_refund": ("chaos-freelancer", "refunded"),
    "declined_then_retry": ("chaos-freelancer", "released"),
}


@dataclass
class Lifecycle:
    """One lifecycle: what it intends and what happened."""

    number: int
    kind: str
    amount: int
    split_to_freelancer: int | None = None
    contract_id: str | None = None
    milestone_id: str | None = None
    final_state: str | None = None
    error: str | None = None
    steps: list[str] = field(default_factory=list)

    @property
    def marketplace(self) -> str:
        return KINDS[self.kind][0]

    @property
    def intended_state(self) -> str:
        return KINDS[self.kind][1]

    @property
    def fee(self) -> int:
        return self.amount * FEE_BPS // 10_000

    def expected_money(self) -> tuple[int, int, int]:
        """(charged, transferred to the freelancer, refunded to the customer)."""
        if self.intended_state == "released":
            return self.amount, self.amount - self.fee, 0
        if self.intended_state == "refunded":
            return self.amount, 0, self.amount
        assert self.split_to_freelancer is not None
        part = self.split_to_freelancer
        return self.amount, part - part * FEE_BPS // 10_000, self.amount - part


async def run_lifecycle(api: Api, stripe: StripeServer, lc: Lifecycle) -> None:
    """Drive ``lc`` to its end through the APIs; record the final state or the error."""
    try:
        await _run(api, stripe, lc)
    except ScenarioError as exc:
        lc.error = str(exc)
    except Exception as exc:
        lc.error = f"{type(exc).__name__}: {exc}"


async def _run(api: Api, stripe: StripeServer, lc: Lifecycle) -> None:
    mk = lc.marketplace
    settings = MARKETPLACES[mk]
    customer = api.token("customer", f"chaos-c{lc.number}", mk)
    freelancer = api.token("freelancer", f"chaos-f{lc.number}", mk)
    operator = api.token("operator", "chaos-operator", mk)

    async def post(token: str, service: str, path: str, body: Any = None) -> Any:
        return await api.call(token, "POST", service, path, body)

    async def reach(*states: str) -> dict[str, Any]:
        assert lc.contract_id is not None
        assert lc.milestone_id is not None
        found = await api.wait_for_milestone(customer, lc.contract_id, lc.milestone_id, states)
        lc.steps.append(found["state"])
        return found

    await _save_card(
        api, stripe, customer, DECLINED_CARD if lc.kind == "declined_then_retry" else GOOD_CARD
    )
    account = (
        await post(
            freelancer,
            "payments",
            "/v1/payment-profiles/me/onboarding-link",
            {
                "refresh_url": "https://chaos.test/refresh",
                "return_url": "https://chaos.test/return",
            },
        )
    )["stripe_account_id"]
    await asyncio.to_thread(stripe.enable_payouts, account)

    job = await post(customer, "contracts", "/v1/jobs", {"title": f"Chaos job {lc.number}"})
    proposal = await post(
        freelancer, "contracts", f"/v1/jobs/{job['id']}/proposals", {"cover_letter": "chaos"}
    )
    lc.contract_id = proposal["id"]
    creator = customer if settings["milestone_creator"] == "customer" else freelancer
    needs_approval = settings["milestone_creator"] == "customer" and not settings.get(
        "skip_freelancer_approval"
    )
    charge_on_approval = bool(settings.get("charge_on_freelancer_approval"))

    if charge_on_approval:  # tasks approved while a proposal; charged when it goes live
        m = await post(
            creator,
            "contracts",
            f"/v1/contracts/{lc.contract_id}/milestones",
            {"title": f"Task {lc.number}", "amount": lc.amount},
        )
        lc.milestone_id = m["id"]
        m = await post(customer, "contracts", f"/v1/milestones/{m['id']}/send-for-approval")
        await post(
            freelancer, "contracts", f"/v1/milestones/{m['id']}/approve", {"version": m["version"]}
        )
        await post(customer, "contracts", f"/v1/contracts/{lc.contract_id}/accept")
    else:
        await post(customer, "contracts", f"/v1/contracts/{lc.contract_id}/accept")
        m = await post(
            creator,
            "contracts",
            f"/v1/contracts/{lc.contract_id}/milestones",
            {"title": f"Milestone {lc.number}", "amount": lc.amount},
        )
        lc.milestone_id = m["id"]
        if needs_approval:
            m = await post(customer, "contracts", f"/v1/milestones/{m['id']}/send-for-approval")
            await post(
                freelancer,
                "contracts",
                f"/v1/milestones/{m['id']}/approve",
                {"version": m["version"]},
            )
        await _pay(api, stripe, customer, lc, post, reach)
    await reach("funded")

    mid = lc.milestone_id
    if lc.kind == "skip_release_from_funded":
        await post(customer, "contracts", f"/v1/milestones/{mid}/release")
    elif lc.kind in ("freelancer_refund",):
        await post(freelancer, "contracts", f"/v1/milestones/{mid}/refund")
    else:
        await post(freelancer, "contracts", f"/v1/milestones/{mid}/complete")
        await reach("submitted")
        if lc.kind.startswith("dispute"):
            m = await post(
                customer,
                "contracts",
                f"/v1/milestones/{mid}/dispute",
                {"reason": "Not what we agreed"},
            )
            body: dict[str, Any] = {"note": "Operator decision after review"}
            if lc.kind == "dispute_split":
                body |= {"outcome": "split", "amount_to_freelancer": lc.split_to_freelancer}
            else:
                body |= {"outcome": "refund"}
            await post(operator, "contracts", f"/v1/disputes/{m['dispute_id']}/resolve", body)
        else:
            await post(customer, "contracts", f"/v1/milestones/{mid}/release")
    final = await reach("released", "refunded", "settled")
    lc.final_state = final["state"]


async def _pay(
    api: Api, stripe: StripeServer, customer: str, lc: Lifecycle, post: Any, reach: Any
) -> None:
    await post(customer, "contracts", f"/v1/milestones/{lc.milestone_id}/pay")
    if lc.kind != "declined_then_retry":
        return
    failed = await reach("approved")  # the declined card sends it back with the reason
    if not failed.get("payment_failure_reason"):
        raise ScenarioError("a declined payment came back without a reason")
    await _save_card(api, stripe, customer, GOOD_CARD)
    await post(customer, "contracts", f"/v1/milestones/{lc.milestone_id}/pay")


async def _save_card(api: Api, stripe: StripeServer, customer: str, number: str) -> None:
    # The front end tokenises the card with Stripe.js, which the Stripe faults hit too; a
    # customer whose card form failed simply tries again.
    client = stripe.client()
    params: Any = {
        "type": "card",
        "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
    }
    for attempt in range(30):
        try:
            pm = await asyncio.to_thread(client.v1.payment_methods.create, params=params)
            break
        except stripe_errors.StripeError:
            if attempt == 29:
                raise
            await asyncio.sleep(0.5)
    await api.call(
        customer,
        "POST",
        "payments",
        "/v1/payment-profiles/me/payment-methods",
        {"payment_method_id": pm.id},
    )


def plan(count: int, rng: random.Random) -> list[Lifecycle]:
    """``count`` lifecycles of mixed kinds and amounts, reproducible from the seed."""
    kinds = sorted(KINDS)
    out = []
    for n in range(count):
        kind = kinds[n % len(kinds)] if n < len(kinds) else rng.choice(kinds)
        amount = rng.randrange(1_000, 250_000)
        split = rng.randrange(1, amount) if kind == "dispute_split" else None
        out.append(Lifecycle(number=n, kind=kind, amount=amount, split_to_freelancer=split))
    return out
