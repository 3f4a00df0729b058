"""Fault injection: the failures Cairn's reconciliation has to survive."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from cairn_devstack.testing import StripeServer


@pytest.fixture(autouse=True)
def _no_faults_left_behind(stripe_server: StripeServer) -> Iterator[None]:
    yield
    stripe_server.clear_faults()


def _impatient_client(stripe_server: StripeServer) -> Any:
    return stripe_server.client(http_client=stripe.RequestsClient(timeout=0.5))


def test_error_fault_answers_500_and_does_nothing(
    payer: Any, stripe_client: Any, stripe_server: StripeServer
) -> None:
    customer, _ = payer.customer_with_card()
    before = stripe_server.stats()
    stripe_server.set_faults(error_rate=1.0, paths=["/v1/payment_intents"])

    with pytest.raises(stripe.APIError) as failed:
        payer.charge(1_000, "ms_fault_500")

    assert failed.value.http_status == 500
    after = stripe_server.stats()
    assert after["payment_intents"] == before["payment_intents"]
    assert after["faults"]["errors"] == 1
    # Paths outside the filter are untouched.
    assert stripe_client.v1.customers.retrieve(customer.id).id == customer.id


def test_timeout_after_work_leaves_the_charge_done_and_replayable(
    payer: Any, stripe_server: StripeServer
) -> None:
    customer, pm = payer.customer_with_card()
    params = {
        "amount": 4_000,
        "currency": "eur",
        "customer": customer.id,
        "payment_method": pm.id,
        "confirm": True,
        "off_session": True,
        "transfer_group": "ms_fault_after",
    }
    key = f"fault-after-{uuid.uuid4()}"
    charges = stripe_server.stats()["charges"]
    stripe_server.set_faults(
        timeout_rate=1.0, timeout_seconds=1.5, timeout_mode="after", paths=["/v1/payment_intents"]
    )

    with pytest.raises(stripe.APIConnectionError):
        _impatient_client(stripe_server).v1.payment_intents.create(params, {"idempotency_key": key})

    # The client does not know, but the money moved.
    assert stripe_server.stats()["charges"] == charges + 1
    stripe_server.clear_faults()
    time.sleep(1.2)  # let the hung request finish
    replay = payer.client.v1.payment_intents.create(params, {"idempotency_key": key})
    assert replay.status == "succeeded"
    assert replay.last_response.headers["Idempotent-Replayed"] == "true"
    assert stripe_server.stats()["charges"] == charges + 1


def test_timeout_before_work_leaves_nothing_behind(payer: Any, stripe_server: StripeServer) -> None:
    customer, pm = payer.customer_with_card()
    intents = stripe_server.stats()["payment_intents"]
    stripe_server.set_faults(timeout_rate=1.0, timeout_seconds=1.0, timeout_mode="before")

    with pytest.raises(stripe.APIConnectionError):
        _impatient_client(stripe_server).v1.payment_intents.create(
            {
                "amount": 4_000,
                "currency": "eur",
                "customer": customer.id,
                "payment_method": pm.id,
                "confirm": True,
                "off_session": True,
            }
        )

    time.sleep(0.7)  # past the server's sleep: still nothing was done
    assert stripe_server.stats()["payment_intents"] == intents
    assert stripe_server.stats()["faults"]["timeouts_before"] == 1


def test_rates_with_a_seed_break_a_repeatable_share(stripe_server: StripeServer) -> None:
    def outcomes() -> list[bool]:
        stripe_server.set_faults(error_rate=0.5, seed=7, paths=["/v1/balance"])
        client = stripe_server.client()
        results = []
        for _ in range(20):
            try:
                client.v1.balance.retrieve()
                results.append(True)
            except stripe.APIError:
                results.append(False)
        return results

    first, second = outcomes(), outcomes()

    assert first == second
    assert 3 <= first.count(False) <= 17


def test_bad_fault_plan_is_refused(stripe_server: StripeServer) -> None:
    from cairn_devstack.httpjson import HttpError

    with pytest.raises(HttpError) as bad:
        stripe_server.set_faults(error_rate=0.8, timeout_rate=0.5)
    assert bad.value.status == 400


def test_server_stops_promptly_while_a_request_hangs(tmp_path: Any) -> None:
    from cairn_devstack.procs import terminate
    from cairn_devstack.testing import start_stripe_server

    server = start_stripe_server(tmp_path)
    server.set_faults(timeout_rate=1.0, timeout_seconds=30, timeout_mode="before")
    with pytest.raises(stripe.APIConnectionError):
        _impatient_client(server).v1.customers.create({"email": "hang@example.com"})

    started = time.monotonic()
    code = terminate(server.proc, timeout=10)

    assert code == 0
    assert time.monotonic() - started < 5
