"""Connect accounts, transfers and reversals through the real ``stripe`` SDK."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from cairn_devstack.testing import StripeServer


def test_custom_account_starts_restricted_and_can_be_updated_and_listed(
    stripe_client: Any,
) -> None:
    account = stripe_client.v1.accounts.create(
        {
            "type": "custom",
            "country": "FR",
            "email": "fl@example.com",
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"freelancer_id": "f-1"},
        }
    )

    assert account.id.startswith("acct_")
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (
        False,
        False,
        False,
    )
    assert account.capabilities.transfers == "inactive"
    assert "external_account" in account.requirements.currently_due
    updated = stripe_client.v1.accounts.update(
        account.id, {"email": "new@example.com", "metadata": {"tier": "gold"}}
    )
    assert updated.email == "new@example.com"
    assert updated.metadata.to_dict() == {"freelancer_id": "f-1", "tier": "gold"}
    assert stripe_client.v1.accounts.retrieve(account.id).email == "new@example.com"
    listed = [a.id for a in stripe_client.v1.accounts.list({"limit": 100}).data]
    assert account.id in listed


def test_unknown_account_parameter_is_refused(stripe_client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError, match="unknown parameter: colour"):
        stripe_client.v1.accounts.create({"type": "custom", "colour": "blue"})


def test_enable_payouts_makes_account_ready_and_sends_signed_account_updated(
    stripe_client: Any, stripe_server: StripeServer, webhooks: Any
) -> None:
    account = stripe_client.v1.accounts.create({"type": "custom", "country": "DE"})

    stripe_server.enable_payouts(account.id)

    ready = stripe_client.v1.accounts.retrieve(account.id)
    assert (ready.charges_enabled, ready.payouts_enabled, ready.details_submitted) == (
        True,
        True,
        True,
    )
    assert ready.requirements.currently_due == []
    assert ready.capabilities.transfers == "active"
    delivery = webhooks.wait_for(
        "account.updated", match=lambda a: a["id"] == account.id and a["payouts_enabled"]
    )
    event = stripe.Webhook.construct_event(delivery.body, delivery.signature, webhooks.secret)
    assert event.account == account.id
    assert event.data.previous_attributes.payouts_enabled is False
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body, delivery.signature, "whsec_wrong")


def test_account_link_points_at_a_page_that_completes_onboarding(
    stripe_client: Any,
) -> None:
    account = stripe_client.v1.accounts.create({"type": "custom", "country": "FR"})
    link = stripe_client.v1.account_links.create(
        {
            "account": account.id,
            "type": "account_onboarding",
            "refresh_url": "https://market.example/refresh",
            "return_url": "https://market.example/done",
        }
    )

    assert link.object == "account_link"
    url = urlsplit(link.url)
    assert parse_qs(url.query)["return_url"] == ["https://market.example/done"]
    conn = http.client.HTTPConnection(url.netloc, timeout=5)
    conn.request("GET", f"{url.path}?{url.query}")
    assert "Complete onboarding" in conn.getresponse().read().decode()
    conn.request("POST", f"{url.path}?{url.query}")  # what the page's button does
    answer = conn.getresponse()
    answer.read()
    conn.close()
    assert answer.status == 303
    assert answer.headers["Location"] == "https://market.example/done"
    assert stripe_client.v1.accounts.retrieve(account.id).payouts_enabled is True


def test_transfer_to_an_account_not_yet_ready_is_refused(payer: Any, stripe_client: Any) -> None:
    charge_id = payer.charge(10_000, "ms_not_ready").latest_charge
    account = stripe_client.v1.accounts.create(
        {"type": "custom", "capabilities": {"transfers": {"requested": True}}}
    )

    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.transfers.create(
            {
                "amount": 9_000,
                "currency": "eur",
                "destination": account.id,
                "source_transaction": charge_id,
            }
        )
    assert refused.value.code == "insufficient_capabilities_for_transfer"


def test_transfer_from_a_charge_then_reversal_gives_money_back(
    payer: Any, stripe_client: Any, ready_account: Any, webhooks: Any
) -> None:
    charge_id = payer.charge(10_000, "ms_release").latest_charge

    transfer = stripe_client.v1.transfers.create(
        {
            "amount": 9_000,
            "currency": "eur",
            "destination": ready_account.id,
            "source_transaction": charge_id,
            "transfer_group": "ms_release",
            "metadata": {"milestone_id": "ms_release"},
        }
    )

    assert (transfer.amount, transfer.amount_reversed, transfer.reversed) == (9_000, 0, False)
    assert transfer.destination == ready_account.id
    assert transfer.source_transaction == charge_id
    webhooks.wait_for("transfer.created", match=lambda t: t["id"] == transfer.id)
    # Only 1 000 of the charge is still unallocated.
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        stripe_client.v1.transfers.create(
            {
                "amount": 1_001,
                "currency": "eur",
                "destination": ready_account.id,
                "source_transaction": charge_id,
            }
        )
    assert too_much.value.code == "balance_insufficient"

    reversal = stripe_client.v1.transfers.reversals.create(transfer.id, {"amount": 4_000})
    assert reversal.object == "transfer_reversal"
    assert reversal.amount == 4_000
    after = stripe_client.v1.transfers.retrieve(transfer.id)
    assert (after.amount_reversed, after.reversed) == (4_000, False)
    assert [r.id for r in after.reversals.data] == [reversal.id]
    webhooks.wait_for("transfer.reversed", match=lambda t: t["id"] == transfer.id)
    # The reversed 4 000 can fund another transfer from the same charge.
    stripe_client.v1.transfers.create(
        {
            "amount": 5_000,
            "currency": "eur",
            "destination": ready_account.id,
            "source_transaction": charge_id,
        }
    )


def test_reversal_cannot_exceed_what_is_left_and_defaults_to_all_of_it(
    payer: Any, stripe_client: Any, ready_account: Any
) -> None:
    charge_id = payer.charge(5_000, "ms_reverse_all").latest_charge
    transfer = stripe_client.v1.transfers.create(
        {
            "amount": 5_000,
            "currency": "eur",
            "destination": ready_account.id,
            "source_transaction": charge_id,
        }
    )
    stripe_client.v1.transfers.reversals.create(transfer.id, {"amount": 1_000})

    with pytest.raises(stripe.InvalidRequestError, match="greater than the amount left"):
        stripe_client.v1.transfers.reversals.create(transfer.id, {"amount": 4_001})
    rest = stripe_client.v1.transfers.reversals.create(transfer.id)
    assert rest.amount == 4_000
    assert stripe_client.v1.transfers.retrieve(transfer.id).reversed is True
    listed = stripe_client.v1.transfers.reversals.list(transfer.id)
    assert sorted(r.amount for r in listed.data) == [1_000, 4_000]
    with pytest.raises(stripe.InvalidRequestError, match="already been fully reversed"):
        stripe_client.v1.transfers.reversals.create(transfer.id)


def test_transfer_checks_destination_and_currency(
    payer: Any, stripe_client: Any, ready_account: Any
) -> None:
    charge_id = payer.charge(5_000, "ms_checks").latest_charge

    with pytest.raises(stripe.InvalidRequestError, match="No such destination"):
        stripe_client.v1.transfers.create(
            {
                "amount": 100,
                "currency": "eur",
                "destination": "acct_missing",
                "source_transaction": charge_id,
            }
        )
    with pytest.raises(stripe.InvalidRequestError, match="must be the same as the transfer"):
        stripe_client.v1.transfers.create(
            {
                "amount": 100,
                "currency": "usd",
                "destination": ready_account.id,
                "source_transaction": charge_id,
            }
        )


def test_transfers_list_filters_by_transfer_group_and_destination(
    payer: Any, stripe_client: Any, ready_account: Any
) -> None:
    first = payer.charge(2_000, "ms_list_a").latest_charge
    second = payer.charge(2_000, "ms_list_b").latest_charge
    a = stripe_client.v1.transfers.create(
        {
            "amount": 1_000,
            "currency": "eur",
            "destination": ready_account.id,
            "source_transaction": first,
            "transfer_group": "ms_list_a",
        }
    )
    b = stripe_client.v1.transfers.create(
        {
            "amount": 1_000,
            "currency": "eur",
            "destination": ready_account.id,
            "source_transaction": second,
            "transfer_group": "ms_list_b",
        }
    )

    by_group = stripe_client.v1.transfers.list({"transfer_group": "ms_list_a"}).data
    assert [t.id for t in by_group] == [a.id]
    by_destination = stripe_client.v1.transfers.list(
        {"destination": ready_account.id, "limit": 100}
    ).data
    ids = [t.id for t in by_destination]
    assert {a.id, b.id} <= set(ids)
    assert ids.index(b.id) < ids.index(a.id)  # newest first


def test_refund_after_transfer_is_still_capped_by_the_charge(
    payer: Any, stripe_client: Any, ready_account: Any
) -> None:
    # Separate charges and transfers: refunding does not touch the transfer.
    charge_id = payer.charge(10_000, "ms_split").latest_charge
    transfer = stripe_client.v1.transfers.create(
        {
            "amount": 6_000,
            "currency": "eur",
            "destination": ready_account.id,
            "source_transaction": charge_id,
        }
    )
    stripe_client.v1.refunds.create({"charge": charge_id, "amount": 4_000})

    assert stripe_client.v1.transfers.retrieve(transfer.id).amount_reversed == 0
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.transfers.create(
            {
                "amount": 1,
                "currency": "eur",
                "destination": ready_account.id,
                "source_transaction": charge_id,
            }
        )
