"""Marketplace settings: DESIGN §2's defaults and the combinations it refuses."""

from typing import Any

import pytest
from cairn_schemas.settings import Branding, MarketplaceSettings
from pydantic import ValidationError

BRANDING = {
    "display_name": "Acme Talent",
    "from_address": "no-reply@acme.example",
    "support_address": "help@acme.example",
}


def _settings(**overrides: Any) -> MarketplaceSettings:
    return MarketplaceSettings.model_validate(
        {"currency": "EUR", "branding": BRANDING, **overrides}
    )


def _refusal(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        _settings(**overrides)
    return str(caught.value)


def test_defaults_are_those_of_design_section_2() -> None:
    settings = _settings()
    assert settings.milestone_creator == "freelancer"
    assert not settings.skip_freelancer_approval
    assert not settings.allow_delete_until_paid
    assert not settings.charge_on_freelancer_approval
    assert settings.auto_release_after_days is None
    assert settings.branding.logo_url is None


@pytest.mark.parametrize("option", ["skip_freelancer_approval", "charge_on_freelancer_approval"])
def test_customer_mode_options_are_refused_on_a_freelancer_mode_marketplace(option: str) -> None:
    message = _refusal(milestone_creator="freelancer", **{option: True})
    assert f"{option} only apply when customers create milestones" in message


def test_both_customer_mode_options_are_named_in_the_refusal() -> None:
    message = _refusal(skip_freelancer_approval=True, charge_on_freelancer_approval=True)
    assert "skip_freelancer_approval and charge_on_freelancer_approval only apply" in message


def test_charging_on_approval_cannot_be_combined_with_skipping_approval() -> None:
    message = _refusal(
        milestone_creator="customer",
        skip_freelancer_approval=True,
        charge_on_freelancer_approval=True,
    )
    assert "cannot be combined with skip_freelancer_approval" in message


@pytest.mark.parametrize(
    "options",
    [
        {"milestone_creator": "customer", "skip_freelancer_approval": True},
        {"milestone_creator": "customer", "charge_on_freelancer_approval": True},
        {
            "milestone_creator": "customer",
            "skip_freelancer_approval": True,
            "allow_delete_until_paid": True,
        },
        {
            "milestone_creator": "customer",
            "charge_on_freelancer_approval": True,
            "allow_delete_until_paid": True,
        },
        # Sub-option 2 is harmless in freelancer mode (creators may delete unpaid ones anyway).
        {"milestone_creator": "freelancer", "allow_delete_until_paid": True},
    ],
)
def test_sensible_combinations_are_accepted(options: dict[str, Any]) -> None:
    settings = _settings(**options)
    for name, value in options.items():
        assert getattr(settings, name) == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("platform_fee_bps", -1),
        ("platform_fee_bps", 10_001),
        ("platform_fee_bps", 2.5),
        ("currency", "eur"),
        ("currency", "EURO"),
        ("auto_release_after_days", 0),
        ("refund_response_days", 0),
        ("holding_limit_fallback", "keep"),
        ("milestone_creator", "operator"),
    ],
)
def test_out_of_range_values_are_refused(field: str, value: Any) -> None:
    assert field in _refusal(**{field: value})


def test_currency_and_branding_have_no_default() -> None:
    with pytest.raises(ValidationError) as caught:
        MarketplaceSettings.model_validate({})
    assert {e["loc"][0] for e in caught.value.errors()} == {"currency", "branding"}


def test_branding_checks_addresses_urls_and_colours() -> None:
    brand = Branding.model_validate(
        {**BRANDING, "accent_colour": "#0A7CFF", "logo_url": "https://acme.example/logo.png"}
    )
    assert brand.accent_colour == "#0a7cff"
    for field, value in [
        ("from_address", "not an address"),
        ("support_address", "help@acme.example\r\nBcc: everyone@example.com"),
        ("accent_colour", "blue"),
        ("logo_url", "javascript:alert(1)"),
        ("display_name", "   "),
    ]:
        with pytest.raises(ValidationError, match=field):
            Branding.model_validate({**BRANDING, field: value})


def test_settings_are_immutable() -> None:
    settings = _settings()
    with pytest.raises(ValidationError):
        settings.platform_fee_bps = 5  # type: ignore[misc]
