"""Stripe's Idempotency-Key behaviour, which Cairn relies on to never charge twice."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import stripe
from cairn_devstack.testing import StripeServer


def _key() -> str:
    return f"milestone-{uuid.uuid4()}-charge"


def test_same_key_same_params_returns_the_same_payment_without_charging_again(
    payer: Any, stripe_client: Any, stripe_server: StripeServer
) -> None:
    customer, pm = payer.customer_with_card()
    params = {
        "amount": 7_000,
        "currency": "eur",
        "customer": customer.id,
        "payment_method": pm.id,
        "confirm": True,
        "off_session": True,
        "transfer_group": "ms_idem",
    }
    key = _key()
    first = stripe_client.v1.payment_intents.create(params, {"idempotency_key": key})
    charges_after_first = stripe_server.stats()["charges"]

    again = stripe_client.v1.payment_intents.create(params, {"idempotency_key": key})

    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert stripe_server.stats()["charges"] == charges_after_first


def test_same_key_with_other_params_is_an_idempotency_error(payer: Any, stripe_client: Any) -> None:
    key = _key()
    payer.charge(1_000, "ms_idem_mismatch", idempotency_key=key)

    with pytest.raises(stripe.IdempotencyError) as mismatch:
        payer.charge(1_001, "ms_idem_mismatch", idempotency_key=key)

    assert mismatch.value.http_status == 400
    assert key in str(mismatch.value)


def test_key_reused_on_another_endpoint_is_refused(payer: Any, stripe_client: Any) -> None:
    key = _key()
    charge_id = payer.charge(1_000, "ms_idem_endpoint", idempotency_key=key).latest_charge

    with pytest.raises(stripe.IdempotencyError):
        stripe_client.v1.refunds.create({"charge": charge_id}, {"idempotency_key": key})


def test_a_declined_charge_is_replayed_as_the_same_decline(
    payer: Any, stripe_server: StripeServer
) -> None:
    customer, pm = payer.customer_with_card("4000000000000341")
    params = {
        "amount": 2_000,
        "currency": "eur",
        "customer": customer.id,
        "payment_method": pm.id,
        "confirm": True,
        "off_session": True,
    }
    key = _key()
    with pytest.raises(stripe.CardError) as first:
        payer.client.v1.payment_intents.create(params, {"idempotency_key": key})
    charges = stripe_server.stats()["charges"]

    with pytest.raises(stripe.CardError) as again:
        payer.client.v1.payment_intents.create(params, {"idempotency_key": key})

    assert first.value.error is not None
    assert again.value.error is not None
    assert first.value.error.payment_intent is not None
    assert again.value.error.payment_intent is not None
    assert again.value.error.payment_intent.id == first.value.error.payment_intent.id
    assert stripe_server.stats()["charges"] == charges


def test_refund_with_same_key_refunds_once(payer: Any, stripe_client: Any) -> None:
    charge_id = payer.charge(5_000, "ms_idem_refund").latest_charge
    key = _key()

    one = stripe_client.v1.refunds.create(
        {"charge": charge_id, "amount": 2_000}, {"idempotency_key": key}
    )
    two = stripe_client.v1.refunds.create(
        {"charge": charge_id, "amount": 2_000}, {"idempotency_key": key}
    )

    assert one.id == two.id
    assert stripe_client.v1.charges.retrieve(charge_id).amount_refunded == 2_000


def test_a_refused_request_is_not_remembered(payer: Any, stripe_client: Any) -> None:
    # Stripe keeps no result for a request refused by validation, so the caller may
    # fix the cause and retry with the same key.
    charge_id = payer.charge(5_000, "ms_idem_fix").latest_charge
    key = _key()
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.refunds.create(
            {"charge": charge_id, "amount": 9_000}, {"idempotency_key": key}
        )

    fixed = stripe_client.v1.refunds.create(
        {"charge": charge_id, "amount": 1_000}, {"idempotency_key": key}
    )
    assert fixed.amount == 1_000


def test_idempotency_survives_a_server_restart(tmp_path: Any) -> None:
    from cairn_devstack.procs import python_module_args, spawn, terminate
    from cairn_devstack.testing import start_stripe_server

    server = start_stripe_server(tmp_path)
    client = server.client()
    key = _key()
    customer = client.v1.customers.create({"email": "r@example.com"}, {"idempotency_key": key})
    server.stop()
    # Restart on the same data dir, this time keeping the store.
    proc = spawn(
        python_module_args(
            "cairn_devstack.stripe",
            "--port",
            str(server.port),
            "--data-dir",
            str(tmp_path),
            "--quiet",
        ),
        log_path=tmp_path / "restart.log",
    )
    try:
        from cairn_devstack.procs import wait_for_port

        wait_for_port(server.port, proc=proc)
        again = client.v1.customers.create({"email": "r@example.com"}, {"idempotency_key": key})
        assert again.id == customer.id
        assert client.v1.customers.retrieve(customer.id).email == "r@example.com"
    finally:
        terminate(proc)
