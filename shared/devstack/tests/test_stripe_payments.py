"""Charging and refunding through the real ``stripe`` SDK against the devstack's localstripe."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from cairn_devstack.testing import StripeServer


def test_off_session_payment_keeps_transfer_group_on_intent_and_charge(
    payer: Any, stripe_client: Any
) -> None:
    pi = payer.charge(12_500, "ms_transfer_group")

    assert pi.status == "succeeded"
    assert pi.transfer_group == "ms_transfer_group"
    # As on Stripe, latest_charge is an id unless expanded.
    assert isinstance(pi.latest_charge, str)
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.transfer_group == "ms_transfer_group"
    assert charge.amount == 12_500
    assert charge.payment_intent == pi.id
    expanded = stripe_client.v1.payment_intents.retrieve(pi.id, {"expand": ["latest_charge"]})
    assert expanded.latest_charge.id == charge.id


def test_card_0341_attaches_but_its_charge_is_declined(payer: Any, stripe_client: Any) -> None:
    customer, pm = payer.customer_with_card("4000000000000341")
    assert pm.customer == customer.id  # attaching worked

    with pytest.raises(stripe.CardError) as declined:
        payer.charge(5_000, "ms_declined", number="4000000000000341")

    assert declined.value.code == "card_declined"
    assert declined.value.error is not None
    failed_pi = declined.value.error.payment_intent
    assert failed_pi is not None
    assert failed_pi.status == "requires_payment_method"
    assert stripe_client.v1.charges.retrieve(failed_pi.latest_charge).status == "failed"


@pytest.mark.parametrize("card", ["4000002760003184", "4000002500003155"])
def test_sca_cards_need_customer_action_with_a_client_secret(payer: Any, card: str) -> None:
    pi = payer.charge(5_000, "ms_sca", number=card)

    assert pi.status == "requires_action"
    assert pi.client_secret.startswith(pi.id + "_secret_")
    assert pi.latest_charge is None  # nothing was charged yet


def test_partial_refunds_then_over_refund_is_refused(payer: Any, stripe_client: Any) -> None:
    charge_id = payer.charge(10_000, "ms_refunds").latest_charge

    stripe_client.v1.refunds.create({"charge": charge_id, "amount": 4_000})
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        stripe_client.v1.refunds.create({"charge": charge_id, "amount": 6_001})

    assert too_much.value.http_status == 400
    assert "is greater than unrefunded amount on charge (60.00 EUR)" in str(too_much.value)
    rest = stripe_client.v1.refunds.create({"charge": charge_id})  # no amount = what is left
    assert rest.amount == 6_000
    charge = stripe_client.v1.charges.retrieve(charge_id)
    assert charge.amount_refunded == 10_000
    assert charge.refunded is True
    with pytest.raises(stripe.InvalidRequestError, match="already been refunded"):
        stripe_client.v1.refunds.create({"charge": charge_id, "amount": 1})


def test_refund_by_payment_intent_is_limited_too(payer: Any, stripe_client: Any) -> None:
    pi = payer.charge(3_000, "ms_refund_pi")

    with pytest.raises(stripe.InvalidRequestError, match="greater than unrefunded"):
        stripe_client.v1.refunds.create({"payment_intent": pi.id, "amount": 3_001})
    assert stripe_client.v1.refunds.create({"payment_intent": pi.id}).amount == 3_000


def test_refund_sends_charge_refunded_webhook(
    payer: Any, stripe_client: Any, webhooks: Any
) -> None:
    charge_id = payer.charge(2_000, "ms_refund_hook").latest_charge
    stripe_client.v1.refunds.create({"charge": charge_id, "amount": 500})

    delivery = webhooks.wait_for("charge.refunded", match=lambda c: c["id"] == charge_id)
    event = stripe.Webhook.construct_event(delivery.body, delivery.signature, webhooks.secret)
    assert event.data.object.amount_refunded == 500


def test_missing_objects_are_resource_missing_404(stripe_client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.payment_intents.retrieve("pi_doesnotexist")

    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"


def test_stats_count_what_was_created(payer: Any, stripe_server: StripeServer) -> None:
    before = stripe_server.stats()
    payer.charge(1_000, "ms_stats")

    after = stripe_server.stats()
    assert after["charges"] == before["charges"] + 1
    assert after["payment_intents"] == before["payment_intents"] + 1
    assert after["refunds"] == before["refunds"]


def test_sca_payment_completes_after_authentication(
    payer: Any, stripe_client: Any, stripe_server: StripeServer
) -> None:
    pi = payer.charge(5_000, "ms_sca_done", number="4000002760003184")

    stripe_server.authenticate_payment(pi.id, pi.client_secret)

    done = stripe_client.v1.payment_intents.retrieve(pi.id)
    assert done.status == "succeeded"
    assert stripe_client.v1.charges.retrieve(done.latest_charge).transfer_group == "ms_sca_done"


def test_flush_forgets_every_object(payer: Any, stripe_server: StripeServer) -> None:
    payer.charge(1_000, "ms_flush")

    stripe_server.flush()

    stats = stripe_server.stats()
    assert stats["charges"] == stats["payment_intents"] == stats["customers"] == 0
    assert stats["idempotency_keys"] == 0


def test_payment_intents_can_be_listed_by_customer(payer: Any, stripe_client: Any) -> None:
    # What reconciliation does after an unknown outcome: find the customer's intents.
    pi = payer.charge(1_500, "ms_list_by_customer")
    other = payer.charge(1_500, "ms_list_other")

    listed = stripe_client.v1.payment_intents.list({"customer": pi.customer, "limit": 100})

    assert [p.id for p in listed.data] == [pi.id]
    assert other.id not in [p.id for p in listed.data]
    assert listed.data[0].metadata["milestone_id"] == "ms_list_by_customer"
