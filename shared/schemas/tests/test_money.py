"""Money is an int of minor units with an ISO currency: nothing else gets in."""

import json
from typing import Any

import pytest
from cairn_schemas.base import Event
from cairn_schemas.events import (
    DisputeResolved,
    MilestoneFundingRequested,
    MilestoneRefundRequested,
    MilestoneReleased,
    MilestoneSettled,
    MilestoneSplitOrdered,
    PaymentReleased,
    PaymentSplitSettled,
)
from cairn_schemas.samples import sample
from pydantic import ValidationError


def _with(event: Event, **changes: Any) -> Event:
    """Re-validate ``event`` with ``changes`` from JSON, the way a consumer receives it."""
    body = json.loads(event.model_dump_json())
    body.update(changes)
    return type(event).model_validate_json(json.dumps(body))


@pytest.mark.parametrize("amount", [0, -1, -150_000, 1500.0, 1500.5, "1500", True])
def test_a_milestone_amount_must_be_a_positive_int(amount: Any) -> None:
    with pytest.raises(ValidationError, match="amount"):
        _with(sample(MilestoneFundingRequested), amount=amount)


def test_a_python_float_is_refused_too_not_silently_truncated() -> None:
    body = sample(MilestoneFundingRequested).model_dump()
    body["amount"] = 1500.0
    with pytest.raises(ValidationError, match="valid integer"):
        MilestoneFundingRequested.model_validate(body)


@pytest.mark.parametrize("currency", ["eur", "EU", "EURO", "€", ""])
def test_currency_is_three_upper_case_letters(currency: str) -> None:
    with pytest.raises(ValidationError, match="currency"):
        _with(sample(MilestoneFundingRequested), currency=currency)


def test_smallest_amount_is_one_minor_unit() -> None:
    event = _with(sample(MilestoneFundingRequested), amount=1)
    assert isinstance(event, MilestoneFundingRequested)
    assert event.amount == 1


@pytest.mark.parametrize("bps", [-1, 10_001, 2.5])
def test_fee_rates_are_basis_points(bps: Any) -> None:
    with pytest.raises(ValidationError, match="platform_fee_bps"):
        _with(sample(MilestoneFundingRequested), platform_fee_bps=bps)


def test_a_release_must_account_for_every_cent() -> None:
    with pytest.raises(ValidationError, match=r"must add up to amount \(150000\)"):
        _with(sample(MilestoneReleased), amount_to_freelancer=135_000, platform_fee=14_999)
    with pytest.raises(ValidationError, match="must add up"):
        _with(sample(PaymentReleased), platform_fee=15_001)
    with pytest.raises(ValidationError, match="platform_fee"):
        _with(sample(PaymentReleased), amount_to_freelancer=150_001, platform_fee=-1)


def test_a_split_must_account_for_every_cent() -> None:
    with pytest.raises(ValidationError, match="must add up"):
        _with(sample(MilestoneSplitOrdered), amount_to_customer=49_999)
    with pytest.raises(ValidationError, match="must add up"):
        _with(sample(MilestoneSettled), amount_refunded=40_000)
    with pytest.raises(ValidationError, match="must add up"):
        _with(sample(PaymentSplitSettled), amount_to_freelancer=90_001)


def test_dispute_shares_add_up_to_the_milestone_amount() -> None:
    with pytest.raises(ValidationError, match="must add up to amount"):
        _with(sample(DisputeResolved), amount_to_freelancer=100_000, amount_to_customer=49_000)


@pytest.mark.parametrize(
    ("outcome", "to_freelancer", "to_customer", "accepted"),
    [
        ("release", 150_000, 0, True),
        ("refund", 0, 150_000, True),
        ("split", 100_000, 50_000, True),
        ("release", 100_000, 50_000, False),
        ("refund", 1, 149_999, False),
        ("split", 150_000, 0, False),
        ("split", 0, 150_000, False),
    ],
)
def test_dispute_outcome_matches_its_shares(
    outcome: str, to_freelancer: int, to_customer: int, accepted: bool
) -> None:
    changes = {
        "outcome": outcome,
        "amount_to_freelancer": to_freelancer,
        "amount_to_customer": to_customer,
    }
    if accepted:
        assert isinstance(_with(sample(DisputeResolved), **changes), DisputeResolved)
    else:
        with pytest.raises(ValidationError, match=f"outcome '{outcome}'"):
            _with(sample(DisputeResolved), **changes)


@pytest.mark.parametrize("note", ["", "   "])
def test_a_dispute_resolution_needs_a_note(note: str) -> None:
    with pytest.raises(ValidationError, match="note"):
        _with(sample(DisputeResolved), note=note)


def test_event_times_must_carry_a_timezone() -> None:
    with pytest.raises(ValidationError, match="respond_by"):
        _with(sample(MilestoneRefundRequested), respond_by="2025-03-08T09:30:00")


@pytest.mark.parametrize("code", ["XYZ", "XXX", "ABC"])
def test_a_currency_stripe_cannot_charge_in_is_refused(code: str) -> None:
    """Issue 16: only ^[A-Z]{3}$ was checked; "XYZ" and "XXX" were stored and charged."""
    from cairn_schemas.events import MarketplaceSettingsChanged
    from cairn_schemas.settings import MarketplaceSettings

    changed = sample(MarketplaceSettingsChanged)
    with pytest.raises(ValidationError, match="not a currency Stripe can charge in"):
        MarketplaceSettings.model_validate(changed.settings.model_dump() | {"currency": code})


@pytest.mark.parametrize("code", ["EUR", "USD", "JPY", "KRW", "KWD", "CHF"])
def test_stripe_currencies_are_accepted(code: str) -> None:
    from cairn_schemas.events import MarketplaceSettingsChanged
    from cairn_schemas.settings import MarketplaceSettings

    changed = sample(MarketplaceSettingsChanged)
    assert (
        MarketplaceSettings.model_validate(
            changed.settings.model_dump() | {"currency": code}
        ).currency
        == code
    )
