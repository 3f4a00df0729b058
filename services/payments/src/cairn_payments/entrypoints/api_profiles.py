"""Payment-profile routes: card set-up for customers, onboarding for freelancers."""

from __future__ import annotations

from datetime import datetime

from cairn_chassis.auth import CurrentPrincipal, require_role
from cairn_chassis.errors import Problem
from fastapi import APIRouter
from pydantic import BaseModel, Field

from cairn_payments.adapters.stripe_gateway import StripeGatewayError, StripeUnknownOutcome
from cairn_payments.adapters.tables import PaymentProfile
from cairn_payments.entrypoints.deps import ContextDep
from cairn_payments.service import profiles

router = APIRouter(prefix="/v1/payment-profiles", tags=["payment profiles"])


class SetupIntentPublic(BaseModel):
    """Hand ``client_secret`` to Stripe.js to save a card."""

    setup_intent_id: str
    client_secret: str
    customer_id: str


class PaymentMethodIn(BaseModel):
    """A card the front end tokenised with Stripe.js."""

    payment_method_id: str = Field(min_length=3, pattern=r"^(pm|card|src)_\w+$")


class OnboardingIn(BaseModel):
    """Where Stripe sends the freelancer back after (or on expiry of) onboarding."""

    refresh_url: str = Field(min_length=1)
    return_url: str = Field(min_length=1)


class ProfilePublic(BaseModel):
    """A user's payment profile in one marketplace."""

    kind: str
    marketplace_id: str
    user_id: str
    stripe_customer_id: str | None
    default_payment_method_id: str | None
    stripe_account_id: str | None
    payouts_enabled: bool
    updated_at: datetime

    @classmethod
    def of(cls, row: PaymentProfile) -> ProfilePublic:
        """The public view of a profile row."""
        return cls(
            kind=row.kind,
            marketplace_id=row.marketplace_id,
            user_id=row.user_id,
            stripe_customer_id=row.stripe_customer_id,
            default_payment_method_id=row.default_payment_method_id,
            stripe_account_id=row.stripe_account_id,
            payouts_enabled=row.payouts_enabled,
            updated_at=row.updated_at,
        )


class OnboardingLinkPublic(BaseModel):
    """Send the freelancer to ``url`` to finish setting up payouts."""

    url: str
    stripe_account_id: str
    payouts_enabled: bool


def _stripe_problem(exc: StripeGatewayError) -> Problem:
    if isinstance(exc, StripeUnknownOutcome):
        return Problem(503, "stripe.unavailable", "Stripe did not answer; please try again.")
    return Problem(422, f"stripe.{exc.code or 'refused'}", exc.message)


@router.get("/me", summary="The signed-in user's payment profiles")
async def my_profiles(ctx: ContextDep, who: CurrentPrincipal) -> list[ProfilePublic]:
    return [ProfilePublic.of(p) for p in await profiles.get_profiles(ctx, who)]


@router.post(
    "/me/setup-intents",
    status_code=201,
    summary="Start saving a card (customers): returns the SetupIntent's client secret",
)
async def create_setup_intent(ctx: ContextDep, who: CurrentPrincipal) -> SetupIntentPublic:
    require_role(who, "customer")
    try:
        created = await profiles.create_setup_intent(ctx, who)
    except StripeGatewayError as exc:
        raise _stripe_problem(exc) from exc
    return SetupIntentPublic(
        setup_intent_id=created.setup_intent_id,
        client_secret=created.client_secret,
        customer_id=created.customer_id,
    )


@router.post(
    "/me/payment-methods",
    summary="Save a tokenised card as the customer's default (customers)",
)
async def save_payment_method(
    body: PaymentMethodIn, ctx: ContextDep, who: CurrentPrincipal
) -> ProfilePublic:
    require_role(who, "customer")
    try:
        profile = await profiles.save_payment_method(ctx, who, body.payment_method_id)
    except StripeGatewayError as exc:
        raise _stripe_problem(exc) from exc
    return ProfilePublic.of(profile)


@router.post(
    "/me/onboarding-link",
    summary="Connected-account onboarding link (freelancers)",
)
async def onboarding_link(
    body: OnboardingIn, ctx: ContextDep, who: CurrentPrincipal
) -> OnboardingLinkPublic:
    require_role(who, "freelancer")
    try:
        profile, url = await profiles.onboarding_link(ctx, who, body.refresh_url, body.return_url)
    except StripeGatewayError as exc:
        raise _stripe_problem(exc) from exc
    assert profile.stripe_account_id is not None
    return OnboardingLinkPublic(
        url=url,
        stripe_account_id=profile.stripe_account_id,
        payouts_enabled=profile.payouts_enabled,
    )
