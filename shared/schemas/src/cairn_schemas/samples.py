"""One valid, realistic instance of every event type, with fixed ids and times.

For tests (round trips, consumers' handlers) and for the email gallery. The story: Ada
(customer) hired Grace (freelancer) on Acme Talent to build a landing page; milestone 1
is "Wireframes", 1,500.00 EUR, 10 % platform fee.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from cairn_schemas.base import Actor, Event, MilestoneState, Party
from cairn_schemas.events import (
    CATALOGUE,
    ContractEnded,
    ContractStarted,
    DeliveryFailed,
    DeliverySucceeded,
    DisputeOpened,
    DisputeResolved,
    JobPosted,
    MarketplaceSettingsChanged,
    MessagePosted,
    MilestoneApproved,
    MilestoneAutoReleaseReminder,
    MilestoneChangesRequested,
    MilestoneCreated,
    MilestoneDeleted,
    MilestoneEdited,
    MilestoneFunded,
    MilestoneFundingRequested,
    MilestoneHoldingLimitReminder,
    MilestonePaymentActionRequired,
    MilestonePaymentFailed,
    MilestoneRefundDeadlineReminder,
    MilestoneRefunded,
    MilestoneRefundOrdered,
    MilestoneRefundRequestDeclined,
    MilestoneRefundRequested,
    MilestoneReleased,
    MilestoneReleaseRequested,
    MilestoneSentForApproval,
    MilestoneSettled,
    MilestoneSplitOrdered,
    MilestoneSubmitted,
    PaymentActionRequired,
    PaymentChargebackOpened,
    PaymentFailed,
    PaymentFunded,
    PaymentReconciling,
    PaymentRefunded,
    PaymentReleased,
    PaymentReleasePending,
    PaymentSplitSettled,
    ProposalDeclined,
    ProposalSubmitted,
    ProposalWithdrawn,
)
from cairn_schemas.settings import Branding, MarketplaceSettings

E = TypeVar("E", bound=Event)

MARKETPLACE_ID = "mkt_acme"
JOB_ID = "job_landing_page"
CONTRACT_ID = "ctr_0001"
MILESTONE_ID = "ms_0001"
DISPUTE_ID = "dsp_0001"
AMOUNT = 150_000
CURRENCY = "EUR"
FEE_BPS = 1_000
NOW = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)

CUSTOMER = Party(user_id="usr_ada", email="ada@example.com", name="Ada Lovelace")
FREELANCER = Party(user_id="usr_grace", email="grace@example.com", name="Grace Hopper")
AS_CUSTOMER = Actor(user_id=CUSTOMER.user_id, role="customer")
AS_FREELANCER = Actor(user_id=FREELANCER.user_id, role="freelancer")
AS_OPERATOR = Actor(user_id="usr_op_olga", role="operator")
AS_SYSTEM = Actor(user_id="cairn-contracts", role="system")
AS_PAYMENTS = Actor(user_id="cairn-payments", role="payments")

SETTINGS = MarketplaceSettings(
    milestone_creator="customer",
    allow_delete_until_paid=True,
    charge_on_freelancer_approval=True,
    platform_fee_bps=FEE_BPS,
    currency=CURRENCY,
    auto_release_after_days=14,
    refund_response_days=5,
    holding_limit_fallback="refund",
    branding=Branding(
        display_name="Acme Talent",
        from_address="no-reply@acme-talent.example",
        support_address="support@acme-talent.example",
        logo_url="https://acme-talent.example/logo.png",
        accent_colour="#0a7cff",
    ),
)

_contract = {
    "marketplace_id": MARKETPLACE_ID,
    "contract_id": CONTRACT_ID,
    "job_id": JOB_ID,
    "job_title": "Landing page for a bakery",
    "customer": CUSTOMER,
    "freelancer": FREELANCER,
}


def _milestone(state: MilestoneState, actor: Actor, version: int = 3) -> dict[str, object]:
    return {
        "marketplace_id": MARKETPLACE_ID,
        "contract_id": CONTRACT_ID,
        "milestone_id": MILESTONE_ID,
        "title": "Wireframes",
        "amount": AMOUNT,
        "currency": CURRENCY,
        "version": version,
        "state": state,
        "actor": actor,
    }


_payment = {
    "marketplace_id": MARKETPLACE_ID,
    "contract_id": CONTRACT_ID,
    "milestone_id": MILESTONE_ID,
    "amount": AMOUNT,
    "currency": CURRENCY,
}
_delivery = {
    "marketplace_id": MARKETPLACE_ID,
    "delivery_id": "dlv_0001",
    "source_event_id": "3f1e2a4c-8d4b-4c55-9a7e-5b0c1d2e3f40",
    "source_event_type": "cairn.milestone.funded",
    "contract_id": CONTRACT_ID,
    "recipient": FREELANCER.email,
    "recipient_user_id": FREELANCER.user_id,
    "template": "milestone_funded",
}
_description = "Three wireframes (home, menu, contact), desktop and mobile."

SAMPLES: dict[str, Event] = {
    sample.event_type: sample
    for sample in (
        MarketplaceSettingsChanged(
            marketplace_id=MARKETPLACE_ID, version=2, settings=SETTINGS, changed_by=AS_OPERATOR
        ),
        JobPosted(
            marketplace_id=MARKETPLACE_ID,
            job_id=JOB_ID,
            title="Landing page for a bakery",
            description="A one-page site with our menu and opening hours.",
            customer=CUSTOMER,
        ),
        ProposalSubmitted(
            **_contract, cover_letter="I have built twenty bakery sites.", settings_version=2
        ),
        ProposalDeclined(**_contract, declined_by=AS_CUSTOMER, reason="We chose someone local."),
        ProposalWithdrawn(**_contract, withdrawn_by=AS_FREELANCER, reason="Fully booked."),
        ContractStarted(**_contract, settings_version=2, started_by=AS_CUSTOMER),
        ContractEnded(**_contract, ended_by=AS_CUSTOMER),
        MilestoneCreated(
            **_milestone("draft", AS_CUSTOMER, 1), description=_description, created_by="customer"
        ),
        MilestoneEdited(
            **_milestone("draft", AS_CUSTOMER, 2),
            description=_description,
            previous_title="Wireframe",
            previous_amount=120_000,
            previous_description="Two wireframes.",
        ),
        MilestoneSentForApproval(
            **_milestone("pending_approval", AS_CUSTOMER), description=_description
        ),
        MilestoneApproved(**_milestone("approved", AS_FREELANCER), approved_version=3),
        MilestoneChangesRequested(
            **_milestone("changes_requested", AS_FREELANCER),
            message="Could we add the about page for the same price?",
        ),
        MilestoneDeleted(**_milestone("deleted", AS_CUSTOMER)),
        MilestoneFundingRequested(
            **_milestone("funding", AS_CUSTOMER),
            customer_id=CUSTOMER.user_id,
            freelancer_id=FREELANCER.user_id,
            platform_fee_bps=FEE_BPS,
            attempt=1,
            trigger="customer",
        ),
        MilestoneFunded(
            **_milestone("funded", AS_PAYMENTS),
            payment_intent_id="pi_0001",
            charge_id="ch_0001",
            attempt=1,
        ),
        MilestonePaymentFailed(
            **_milestone("approved", AS_PAYMENTS),
            reason="Your card was declined.",
            failure_code="card_declined",
            attempt=1,
            payment_intent_id="pi_0001",
        ),
        MilestonePaymentActionRequired(
            **_milestone("funding", AS_PAYMENTS),
            payment_intent_id="pi_0001",
            client_secret="pi_0001_secret_abc",
            attempt=1,
        ),
        MilestoneSubmitted(
            **_milestone("submitted", AS_FREELANCER),
            auto_release_at=datetime(2025, 3, 17, 9, 30, tzinfo=UTC),
        ),
        MilestoneReleaseRequested(
            **_milestone("releasing", AS_CUSTOMER),
            trigger="customer",
            platform_fee_bps=FEE_BPS,
            freelancer_id=FREELANCER.user_id,
        ),
        MilestoneReleased(
            **_milestone("released", AS_PAYMENTS),
            transfer_id="tr_0001",
            amount_to_freelancer=135_000,
            platform_fee=15_000,
        ),
        MilestoneRefundRequested(
            **_milestone("funded", AS_CUSTOMER),
            reason="We cancelled the project.",
            respond_by=datetime(2025, 3, 8, 9, 30, tzinfo=UTC),
        ),
        MilestoneRefundRequestDeclined(
            **_milestone("disputed", AS_FREELANCER), message="The wireframes were delivered."
        ),
        MilestoneRefundOrdered(
            **_milestone("refunding", AS_FREELANCER), reason="freelancer_refund"
        ),
        MilestoneSplitOrdered(
            **_milestone("disputed", AS_OPERATOR),
            dispute_id=DISPUTE_ID,
            amount_to_freelancer=100_000,
            amount_to_customer=50_000,
            platform_fee_bps=FEE_BPS,
            freelancer_id=FREELANCER.user_id,
        ),
        MilestoneRefunded(**_milestone("refunded", AS_PAYMENTS), refund_id="re_0001"),
        MilestoneSettled(
            **_milestone("settled", AS_PAYMENTS),
            amount_to_freelancer=90_000,
            platform_fee=10_000,
            amount_refunded=50_000,
            transfer_id="tr_0002",
            refund_id="re_0002",
            dispute_id=DISPUTE_ID,
        ),
        MilestoneAutoReleaseReminder(
            **_milestone("submitted", AS_SYSTEM),
            releases_at=datetime(2025, 3, 17, 9, 30, tzinfo=UTC),
        ),
        MilestoneRefundDeadlineReminder(
            **_milestone("funded", AS_SYSTEM), deadline=datetime(2025, 3, 8, 9, 30, tzinfo=UTC)
        ),
        MilestoneHoldingLimitReminder(
            **_milestone("funded", AS_SYSTEM),
            limit_at=datetime(2025, 6, 1, 9, 30, tzinfo=UTC),
            fallback="refund",
        ),
        DisputeOpened(
            marketplace_id=MARKETPLACE_ID,
            contract_id=CONTRACT_ID,
            dispute_id=DISPUTE_ID,
            milestone_id=MILESTONE_ID,
            milestone_title="Wireframes",
            reason="Only two of three wireframes.",
            opened_by=AS_CUSTOMER,
            amount=AMOUNT,
            currency=CURRENCY,
        ),
        DisputeResolved(
            marketplace_id=MARKETPLACE_ID,
            contract_id=CONTRACT_ID,
            dispute_id=DISPUTE_ID,
            milestone_id=MILESTONE_ID,
            milestone_title="Wireframes",
            outcome="split",
            amount=AMOUNT,
            currency=CURRENCY,
            amount_to_freelancer=100_000,
            amount_to_customer=50_000,
            note="Two of three wireframes delivered.",
            resolved_by=AS_OPERATOR,
        ),
        MessagePosted(
            marketplace_id=MARKETPLACE_ID,
            contract_id=CONTRACT_ID,
            message_id="msg_0001",
            milestone_id=MILESTONE_ID,
            author=AS_FREELANCER,
            body="First drafts are up, have a look.",
        ),
        PaymentFunded(**_payment, attempt=1, payment_intent_id="pi_0001", charge_id="ch_0001"),
        PaymentFailed(
            **_payment,
            attempt=1,
            reason="Your card was declined.",
            failure_code="card_declined",
            payment_intent_id="pi_0001",
        ),
        PaymentActionRequired(
            **_payment, attempt=1, payment_intent_id="pi_0001", client_secret="pi_0001_secret_abc"
        ),
        PaymentReleased(
            **_payment, transfer_id="tr_0001", amount_to_freelancer=135_000, platform_fee=15_000
        ),
        PaymentReleasePending(
            **_payment,
            freelancer_id=FREELANCER.user_id,
            reason="Add your bank account to receive payouts.",
        ),
        PaymentRefunded(**_payment, refund_id="re_0001", charge_id="ch_0001"),
        PaymentSplitSettled(
            **_payment,
            dispute_id=DISPUTE_ID,
            transfer_id="tr_0002",
            refund_id="re_0002",
            amount_to_freelancer=90_000,
            platform_fee=10_000,
            amount_refunded=50_000,
        ),
        PaymentChargebackOpened(
            **_payment,
            charge_id="ch_0001",
            stripe_dispute_id="dp_0001",
            chargeback_amount=AMOUNT,
            reason="fraudulent",
            funds_released=False,
        ),
        PaymentReconciling(
            **_payment,
            operation="charge",
            attempt=1,
            reason="Stripe timed out; looking the charge up by idempotency key.",
        ),
        DeliverySucceeded(**_delivery, attempts=1, message_id="<dlv_0001@cairn.example>"),
        DeliveryFailed(
            **_delivery, attempts=5, reason="550 5.1.1 mailbox unavailable", permanent=True
        ),
    )
}
"""A valid instance of every event type, by event type."""

_missing = {cls.event_type for cls in CATALOGUE} - set(SAMPLES)
if _missing:  # pragma: no cover - caught by the test suite the moment it happens
    raise RuntimeError(f"no sample for {sorted(_missing)}")


def sample(cls: type[E]) -> E:
    """The sample instance of event class ``cls``."""
    instance = SAMPLES[cls.event_type]
    if not isinstance(instance, cls):
        raise TypeError(f"the sample of {cls.event_type} is a {type(instance).__name__}")
    return instance
