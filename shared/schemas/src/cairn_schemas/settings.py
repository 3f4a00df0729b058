"""A marketplace's settings (DESIGN §2): published on the compacted marketplaces topic and
reused by the contracts service as the core of its settings API model.

The combinations DESIGN §2 forbids are refused here, with a message an operator can act
on, so no other service ever sees them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from cairn_schemas.base import BasisPoints, Currency, EmailAddress, Line

HexColour = Annotated[str, StringConstraints(to_lower=True, pattern=r"^#[0-9a-fA-F]{6}$")]
"""``#rrggbb``; stored lower-case."""

WebUrl = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s]+$")]


class Branding(BaseModel):
    """How a marketplace's emails look and whom they come from."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    display_name: Line
    from_address: EmailAddress
    support_address: EmailAddress
    logo_url: WebUrl | None = None
    accent_colour: HexColour = "#333333"


class MarketplaceSettings(BaseModel):
    """Every per-marketplace setting of DESIGN §2, with the defaults it names.

    ``currency`` and ``branding`` have no sensible default and must be given.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    milestone_creator: Literal["freelancer", "customer"] = "freelancer"
    skip_freelancer_approval: bool = Field(
        default=False,
        description="Customer mode only (guide sub-option 1): no freelancer approval; the "
        "customer pays straight after creating and may release without the freelancer "
        "marking the work complete.",
    )
    allow_delete_until_paid: bool = Field(
        default=False,
        description="Guide sub-option 2: milestones may be deleted at any point before they "
        "are paid, including after the freelancer approved them.",
    )
    charge_on_freelancer_approval: bool = Field(
        default=False,
        description="Customer mode only (guide sub-option 3): the customer's saved card is "
        "charged when the freelancer approves; never while the contract is a proposal.",
    )
    platform_fee_bps: BasisPoints = 0
    currency: Currency
    auto_release_after_days: int | None = Field(
        default=None, ge=1, description="Release submitted work after this many days; null = off."
    )
    refund_response_days: int = Field(
        default=7, ge=1, description="Days a freelancer has to answer a refund request."
    )
    holding_limit_fallback: Literal["release", "refund"] = Field(
        default="refund",
        description="What happens to escrowed money that reaches Stripe's holding limit.",
    )
    chargeback_after_release: Literal["freelancer", "platform"] = Field(
        default="freelancer",
        description="Who bears a chargeback on money already released: freelancer = the "
        "part paid out is recorded as owed by the freelancer (to recover from later "
        "payouts); platform = the marketplace absorbs it. Money still in escrow is always "
        "frozen and taken from the escrow first.",
    )
    branding: Branding

    @model_validator(mode="after")
    def _refuse_senseless_combinations(self) -> MarketplaceSettings:
        if self.milestone_creator == "freelancer":
            customer_only = [
                name
                for name in ("skip_freelancer_approval", "charge_on_freelancer_approval")
                if getattr(self, name)
            ]
            if customer_only:
                raise ValueError(
                    f"{' and '.join(customer_only)} only apply when customers create "
                    "milestones (milestone_creator='customer'); this marketplace has "
                    "freelancers create them"
                )
        if self.skip_freelancer_approval and self.charge_on_freelancer_approval:
            raise ValueError(
                "charge_on_freelancer_approval cannot be combined with "
                "skip_freelancer_approval: with approval skipped the freelancer never "
                "approves, so there is no approval to charge on"
            )
        return self
