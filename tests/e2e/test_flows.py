"""Every flow of the product guide, end to end through the HTTP APIs of the three services
running as separate processes: final states, the exact Stripe objects, the ledger, and the
exact set of emails (recipient, subject) — no more, no fewer."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import Env
from tests.e2e.flows import DECLINED_CARD, GOOD_CARD, Flow

pytestmark = pytest.mark.e2e
AMOUNT = 50_000  # €500.00; every marketplace here takes a 10 % fee
NET = 45_000
CUSTOMER_MODE = {"milestone_creator": "customer"}


def money(
    flow: Flow,
    milestone_id: str,
    *,
    charges: list[int],
    transfers: list[int],
    refunds: list[int],
    state: str,
) -> None:
    """Stripe holds exactly these objects, the escrow agrees, the ledger balances."""
    assert flow.stripe(milestone_id) == {
        "charges": charges,
        "transfers": transfers,
        "refunds": refunds,
    }
    escrow = flow.escrow(milestone_id)
    assert escrow["state"] == state
    assert (escrow["charged"], escrow["transferred"], escrow["refunded"]) == (
        sum(charges),
        sum(transfers),
        sum(refunds),
    )
    assert flow.ledger_total() == 0


def work_and_release(flow: Flow, milestone_id: str) -> None:
    flow.reach(milestone_id, "funded")
    flow.act(flow.freelancer, milestone_id, "complete")
    flow.act(flow.customer, milestone_id, "release")
    flow.reach(milestone_id, "released")


def task_approved_by_freelancer(flow: Flow, title: str) -> dict[str, object]:
    m = flow.create(flow.customer, title, AMOUNT)
    assert m["state"] == "draft"
    m = flow.act(flow.customer, str(m["id"]), "send-for-approval")
    return flow.approve(m)


PROPOSAL = ("customer", "New proposal from Finn Freelancer for “Brand identity”")
ACCEPTED = ("freelancer", "Cleo Customer accepted your proposal for “Brand identity”")


def created(title: str) -> tuple[str, str]:
    return ("customer", f"New milestone “{title}” (€500.00) is ready for you to fund")


def escrow(title: str) -> tuple[str, str]:
    return ("freelancer", f"€500.00 is in escrow for “{title}”: you can start work")


def submitted(title: str) -> tuple[str, str]:
    return ("customer", f"Work submitted for “{title}”: please review")


def released(title: str) -> list[tuple[str, str]]:
    return [
        ("customer", f"Receipt: €500.00 released for “{title}”"),
        ("freelancer", f"You have been paid €450.00 for “{title}”"),
    ]


def to_review(title: str) -> tuple[str, str]:
    return ("freelancer", f"New task to review: “{title}” (€500.00)")


def approved(title: str) -> tuple[str, str]:
    return ("customer", f"Finn Freelancer approved the task “{title}”")


def expect_emails(flow: Flow, expected: list[tuple[str, str]]) -> None:
    """Exactly these (recipient, subject) went out about this marketplace, once each."""
    address = {
        "customer": flow.customer_email,
        "freelancer": flow.freelancer_email,
        "operators": flow.operators_email,
    }
    want = sorted((address[who], subject) for who, subject in expected)
    got = [(to, _undated(subject)) for to, subject in flow.settle_emails(len(want))]
    assert sorted(got) == want


def _undated(subject: str) -> str:
    # Reminders name a moment that depends on when the test ran.
    return re.sub(r"\d{1,2} \w+ \d{4}, \d{2}:\d{2} UTC", "<when>", subject)


def test_freelancer_mode(env: Env) -> None:
    flow = Flow.open(env)
    flow.propose()
    flow.accept()
    m = flow.create(flow.freelancer, "Logo concepts", AMOUNT)
    assert m["state"] == "approved", "the customer paying is their acceptance"
    flow.create(flow.customer, "Not allowed", AMOUNT, expect=409)
    flow.act(flow.customer, m["id"], "pay")
    work_and_release(flow, m["id"])
    money(flow, m["id"], charges=[AMOUNT], transfers=[NET], refunds=[], state="released")
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            created("Logo concepts"),
            escrow("Logo concepts"),
            submitted("Logo concepts"),
            *released("Logo concepts"),
        ],
    )


def test_customer_mode_plain(env: Env) -> None:
    flow = Flow.open(env, **CUSTOMER_MODE)
    flow.propose()
    m = task_approved_by_freelancer(flow, "Landing page")
    assert m["state"] == "approved"
    flow.act(flow.customer, str(m["id"]), "pay", expect=409)  # not live yet
    flow.accept()
    flow.act(flow.customer, str(m["id"]), "pay")
    work_and_release(flow, str(m["id"]))
    money(flow, str(m["id"]), charges=[AMOUNT], transfers=[NET], refunds=[], state="released")
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            to_review("Landing page"),
            approved("Landing page"),
            escrow("Landing page"),
            submitted("Landing page"),
            *released("Landing page"),
        ],
    )


def test_skip_freelancer_approval(env: Env) -> None:
    flow = Flow.open(env, **CUSTOMER_MODE, skip_freelancer_approval=True)
    flow.propose()
    flow.accept()
    m = flow.create(flow.customer, "Copywriting", AMOUNT)
    assert m["state"] == "approved"
    flow.act(flow.customer, m["id"], "pay")
    flow.reach(m["id"], "funded")
    flow.act(flow.customer, m["id"], "release")  # no "mark complete" needed
    flow.reach(m["id"], "released")
    money(flow, m["id"], charges=[AMOUNT], transfers=[NET], refunds=[], state="released")
    expect_emails(flow, [PROPOSAL, ACCEPTED, escrow("Copywriting"), *released("Copywriting")])


def test_delete_until_paid(env: Env) -> None:
    flow = Flow.open(env, **CUSTOMER_MODE, allow_delete_until_paid=True)
    flow.propose()
    dropped = task_approved_by_freelancer(flow, "Dropped task")
    assert (
        flow.customer.call(
            "DELETE", "contracts", f"/v1/milestones/{dropped['id']}", expect=200
        ).json()["state"]
        == "deleted"
    )
    kept = task_approved_by_freelancer(flow, "Kept task")
    flow.accept()
    flow.act(flow.customer, str(kept["id"]), "pay")
    flow.reach(str(kept["id"]), "funded")
    flow.customer.call("DELETE", "contracts", f"/v1/milestones/{kept['id']}", expect=409)
    money(flow, str(kept["id"]), charges=[AMOUNT], transfers=[], refunds=[], state="funded")
    assert flow.stripe(str(dropped["id"])) == {"charges": [], "transfers": [], "refunds": []}
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            to_review("Dropped task"),
            approved("Dropped task"),
            ("freelancer", "The task “Dropped task” was deleted"),
            to_review("Kept task"),
            approved("Kept task"),
            escrow("Kept task"),
        ],
    )


def test_charge_on_freelancer_approval(env: Env) -> None:
    flow = Flow.open(env, **CUSTOMER_MODE, charge_on_freelancer_approval=True)
    flow.propose()
    before_live = task_approved_by_freelancer(flow, "Approved while a proposal")
    assert before_live["state"] == "approved", "never charged while a proposal"
    flow.accept()  # going live charges every approved task
    flow.reach(str(before_live["id"]), "funded")
    on_live = task_approved_by_freelancer(flow, "Approved on the live contract")
    assert on_live["state"] == "funding", "approval charges the card at once"
    flow.reach(str(on_live["id"]), "funded")
    for m in (before_live, on_live):
        money(flow, str(m["id"]), charges=[AMOUNT], transfers=[], refunds=[], state="funded")
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            *(
                e
                for t in ("Approved while a proposal", "Approved on the live contract")
                for e in (to_review(t), approved(t), escrow(t))
            ),
        ],
    )


def test_skip_approval_with_delete_until_paid(env: Env) -> None:
    flow = Flow.open(
        env, **CUSTOMER_MODE, skip_freelancer_approval=True, allow_delete_until_paid=True
    )
    flow.propose()
    flow.accept()
    gone = flow.create(flow.customer, "Changed my mind", AMOUNT)
    flow.customer.call("DELETE", "contracts", f"/v1/milestones/{gone['id']}", expect=200)
    m = flow.create(flow.customer, "The real task", AMOUNT)
    flow.act(flow.customer, m["id"], "pay")
    flow.reach(m["id"], "funded")
    flow.act(flow.customer, m["id"], "release")
    flow.reach(m["id"], "released")
    money(flow, m["id"], charges=[AMOUNT], transfers=[NET], refunds=[], state="released")
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            ("freelancer", "The task “Changed my mind” was deleted"),
            escrow("The real task"),
            *released("The real task"),
        ],
    )


def test_delete_until_paid_with_charge_on_approval(env: Env) -> None:
    flow = Flow.open(
        env, **CUSTOMER_MODE, allow_delete_until_paid=True, charge_on_freelancer_approval=True
    )
    flow.propose()
    dropped = task_approved_by_freelancer(flow, "Dropped before going live")
    flow.customer.call("DELETE", "contracts", f"/v1/milestones/{dropped['id']}", expect=200)
    kept = task_approved_by_freelancer(flow, "Charged when live")
    flow.accept()
    work_and_release(flow, str(kept["id"]))
    money(flow, str(kept["id"]), charges=[AMOUNT], transfers=[NET], refunds=[], state="released")
    assert flow.stripe(str(dropped["id"])) == {"charges": [], "transfers": [], "refunds": []}
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            to_review("Dropped before going live"),
            approved("Dropped before going live"),
            ("freelancer", "The task “Dropped before going live” was deleted"),
            to_review("Charged when live"),
            approved("Charged when live"),
            escrow("Charged when live"),
            submitted("Charged when live"),
            *released("Charged when live"),
        ],
    )


def disputed(flow: Flow) -> tuple[str, str]:
    flow.propose()
    flow.accept()
    m = flow.create(flow.freelancer, "Illustrations", AMOUNT)
    flow.act(flow.customer, m["id"], "pay")
    flow.reach(m["id"], "funded")
    flow.act(flow.freelancer, m["id"], "complete")
    d = flow.act(flow.customer, m["id"], "dispute", {"reason": "Not what we agreed"})
    return m["id"], str(d["dispute_id"])


@pytest.mark.parametrize(
    ("outcome", "to_freelancer", "state", "transfers", "refunds"),
    [
        ("release", None, "released", [NET], []),
        ("refund", None, "refunded", [], [AMOUNT]),
        ("split", 30_000, "settled", [27_000], [20_000]),
    ],
)
def test_dispute_resolved(
    env: Env,
    outcome: str,
    to_freelancer: int | None,
    state: str,
    transfers: list[int],
    refunds: list[int],
) -> None:
    flow = Flow.open(env)
    milestone_id, dispute_id = disputed(flow)
    body: dict[str, object] = {"outcome": outcome, "note": "Reviewed both sides"}
    if to_freelancer is not None:
        body["amount_to_freelancer"] = to_freelancer
        bad = body | {"amount_to_freelancer": AMOUNT}
        flow.operator.post("contracts", f"/v1/disputes/{dispute_id}/resolve", bad, expect=422)
    flow.operator.post("contracts", f"/v1/disputes/{dispute_id}/resolve", body)
    flow.reach(milestone_id, state)
    escrow_state = {"released": "released", "refunded": "refunded", "settled": "settled"}
    money(
        flow,
        milestone_id,
        charges=[AMOUNT],
        transfers=transfers,
        refunds=refunds,
        state=escrow_state[state],
    )
    # The decision is each party's one email about the outcome, whichever it is: the money
    # moving a second later is not a second one (issue 16).
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            created("Illustrations"),
            escrow("Illustrations"),
            submitted("Illustrations"),
            ("freelancer", "Cleo Customer disputed “Illustrations”"),
            ("operators", "Dispute to decide: “Illustrations” (€500.00) on “Brand identity”"),
            ("customer", "The dispute over “Illustrations” was decided"),
            ("freelancer", "The dispute over “Illustrations” was decided"),
        ],
    )


def test_refund_request_accepted(env: Env) -> None:
    flow = Flow.open(env)
    flow.propose()
    flow.accept()
    m = flow.create(flow.freelancer, "Video edit", AMOUNT)
    flow.act(flow.customer, m["id"], "pay")
    flow.reach(m["id"], "funded")
    flow.act(flow.customer, m["id"], "request-refund", {"reason": "Project cancelled"})
    flow.act(flow.freelancer, m["id"], "refund-request/answer", {"accept": True})
    flow.reach(m["id"], "refunded")
    money(flow, m["id"], charges=[AMOUNT], transfers=[], refunds=[AMOUNT], state="refunded")
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            created("Video edit"),
            escrow("Video edit"),
            ("customer", "Your refund request for “Video edit” was sent"),
            ("freelancer", "Cleo Customer asked for a refund of “Video edit”"),
            ("customer", "€500.00 for “Video edit” was refunded to you"),
            ("freelancer", "€500.00 for “Video edit” was refunded to the customer"),
        ],
    )


def test_refund_request_declined_becomes_a_dispute(env: Env) -> None:
    flow = Flow.open(env)
    flow.propose()
    flow.accept()
    m = flow.create(flow.freelancer, "Video edit", AMOUNT)
    flow.act(flow.customer, m["id"], "pay")
    flow.reach(m["id"], "funded")
    flow.act(flow.customer, m["id"], "request-refund", {"reason": "Project cancelled"})
    declined = flow.act(
        flow.freelancer,
        m["id"],
        "refund-request/answer",
        {"accept": False, "message": "The work is done"},
    )
    assert declined["state"] == "disputed"
    disputes = flow.operator.get("contracts", "/v1/disputes?status=open")["items"]
    assert [d["milestone_id"] for d in disputes] == [m["id"]]
    money(flow, m["id"], charges=[AMOUNT], transfers=[], refunds=[], state="funded")
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            created("Video edit"),
            escrow("Video edit"),
            ("customer", "Your refund request for “Video edit” was sent"),
            ("freelancer", "Cleo Customer asked for a refund of “Video edit”"),
            ("customer", "Your refund request for “Video edit” was declined"),
            ("freelancer", "Cleo Customer disputed “Video edit”"),
            ("operators", "Dispute to decide: “Video edit” (€500.00) on “Brand identity”"),
        ],
    )


def test_refund_request_left_to_its_deadline_is_refunded(env: Env) -> None:
    flow = Flow.open(env, refund_response_days=1)  # a settings day is DAY_SECONDS here
    flow.propose()
    flow.accept()
    m = flow.create(flow.freelancer, "Translation", AMOUNT)
    flow.act(flow.customer, m["id"], "pay")
    flow.reach(m["id"], "funded")
    flow.act(flow.customer, m["id"], "request-refund", {"reason": "No answer from you"})
    flow.reach(m["id"], "refunded", timeout=60)
    money(flow, m["id"], charges=[AMOUNT], transfers=[], refunds=[AMOUNT], state="refunded")
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            created("Translation"),
            escrow("Translation"),
            ("customer", "Your refund request for “Translation” was sent"),
            ("freelancer", "Cleo Customer asked for a refund of “Translation”"),
            ("freelancer", "Please answer the refund request for “Translation” by <when>"),
            ("customer", "€500.00 for “Translation” was refunded to you"),
            ("freelancer", "€500.00 for “Translation” was refunded to the customer"),
        ],
    )


def test_auto_release_after_the_review_period(env: Env) -> None:
    flow = Flow.open(env, auto_release_after_days=1)
    flow.propose()
    flow.accept()
    m = flow.create(flow.freelancer, "Audit", AMOUNT)
    flow.act(flow.customer, m["id"], "pay")
    flow.reach(m["id"], "funded")
    flow.act(flow.freelancer, m["id"], "complete")
    flow.reach(m["id"], "released", timeout=60)  # the customer never pressed release
    money(flow, m["id"], charges=[AMOUNT], transfers=[NET], refunds=[], state="released")
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            created("Audit"),
            escrow("Audit"),
            submitted("Audit"),
            ("customer", "“Audit” will be released to Finn Freelancer on <when>"),
            *released("Audit"),
        ],
    )


def test_declined_card_then_retry(env: Env) -> None:
    flow = Flow.open(env, card=DECLINED_CARD)
    flow.propose()
    flow.accept()
    m = flow.create(flow.freelancer, "Brochure", AMOUNT)
    flow.act(flow.customer, m["id"], "pay")
    back = flow.reach(m["id"], "approved")
    assert back["payment_failure_reason"], "the customer is told why"
    flow.save_card(GOOD_CARD)
    flow.act(flow.customer, m["id"], "pay")
    work_and_release(flow, m["id"])
    money(flow, m["id"], charges=[AMOUNT], transfers=[NET], refunds=[], state="released")
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            created("Brochure"),
            ("customer", "Your payment of €500.00 for “Brochure” did not go through"),
            escrow("Brochure"),
            submitted("Brochure"),
            *released("Brochure"),
        ],
    )


def test_release_waits_for_the_freelancer_s_payout_account(env: Env) -> None:
    flow = Flow.open(env, onboard=False)
    flow.propose()
    flow.accept()
    m = flow.create(flow.freelancer, "Mobile app", AMOUNT)
    flow.act(flow.customer, m["id"], "pay")
    flow.reach(m["id"], "funded")
    flow.act(flow.freelancer, m["id"], "complete")
    flow.act(flow.customer, m["id"], "release")
    waiting = flow.escrow(m["id"])
    assert flow.milestone(m["id"])["state"] == "releasing"
    assert flow.stripe(m["id"])["transfers"] == []
    flow.onboard()
    flow.reach(m["id"], "released")
    assert waiting["transferred"] == 0
    money(flow, m["id"], charges=[AMOUNT], transfers=[NET], refunds=[], state="released")
    expect_emails(
        flow,
        [
            PROPOSAL,
            ACCEPTED,
            created("Mobile app"),
            escrow("Mobile app"),
            submitted("Mobile app"),
            ("freelancer", "Add your payout details to receive €500.00"),
            *released("Mobile app"),
        ],
    )
