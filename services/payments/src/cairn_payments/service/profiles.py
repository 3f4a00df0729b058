"""Payment profiles: a Stripe Customer per (marketplace, customer) with a saved card, and a
Custom connected account per (marketplace, freelancer) with its onboarding link."""

from __future__ import annotations

from dataclasses import dataclass

from cairn_chassis.auth import Principal
from cairn_chassis.outbox import utcnow
from sqlmodel.ext.asyncio.session import AsyncSession

from cairn_payments.adapters import repository as repo
from cairn_payments.adapters.tables import PaymentProfile
from cairn_payments.service.context import PaymentsContext


@dataclass(frozen=True)
class SetupIntentCreated:
    """What the front end needs to save a card with Stripe.js."""

    setup_intent_id: str
    client_secret: str
    customer_id: str


async def _customer(ctx: PaymentsContext, session: AsyncSession, who: Principal) -> PaymentProfile:
    """The customer's profile with its Stripe Customer, created on first use."""
    profile = await repo.ensure_profile(
        session, who.marketplace_id, who.user_id, "customer", who.email or None
    )
    if profile.stripe_customer_id is None:
        profile.stripe_customer_id = await ctx.gateway.create_customer(
            marketplace_id=who.marketplace_id,
            user_id=who.user_id,
            email=who.email or None,
            key=f"cairn:customer:{who.marketplace_id}:{who.user_id}",
        )
        profile.updated_at = utcnow()
        session.add(profile)
    return profile


async def create_setup_intent(ctx: PaymentsContext, who: Principal) -> SetupIntentCreated:
    """A SetupIntent so the front end can save a card for later off-session charges."""
    async with ctx.db.transaction() as session:
        profile = await _customer(ctx, session, who)
        assert profile.stripe_customer_id is not None
        si_id, secret = await ctx.gateway.create_setup_intent(profile.stripe_customer_id)
        return SetupIntentCreated(si_id, secret, profile.stripe_customer_id)


async def save_payment_method(
    ctx: PaymentsContext, who: Principal, payment_method_id: str
) -> PaymentProfile:
    """Attach a card the front end tokenised and make it the customer's default."""
    async with ctx.db.transaction() as session:
        profile = await _customer(ctx, session, who)
        assert profile.stripe_customer_id is not None
        await ctx.gateway.attach_default_payment_method(
            profile.stripe_customer_id, payment_method_id
        )
        profile.default_payment_method_id = payment_method_id
        profile.updated_at = utcnow()
        session.add(profile)
        return profile


async def onboarding_link(
    ctx: PaymentsContext, who: Principal, refresh_url: str, return_url: str
) -> tuple[PaymentProfile, str]:
    """The freelancer's connected account (created on first use) and an onboarding link."""
    async with ctx.db.transaction() as session:
        profile = await repo.ensure_profile(
            session, who.marketplace_id, who.user_id, "freelancer", who.email or None
        )
        if profile.stripe_account_id is None:
            profile.stripe_account_id = await ctx.gateway.create_account(
                marketplace_id=who.marketplace_id,
                user_id=who.user_id,
                email=who.email or None,
                key=f"cairn:account:{who.marketplace_id}:{who.user_id}",
            )
            profile.updated_at = utcnow()
            session.add(profile)
        url = await ctx.gateway.create_account_link(
            profile.stripe_account_id, refresh_url, return_url
        )
        return profile, url


async def get_profiles(ctx: PaymentsContext, who: Principal) -> list[PaymentProfile]:
    """The signed-in user's profiles in their marketplace (customer and/or freelancer)."""
    async with ctx.db.transaction() as session:
        found = []
        for kind in ("customer", "freelancer"):
            profile = await repo.get_profile(session, who.marketplace_id, who.user_id, kind)
            if profile is not None:
                found.append(profile)
        return found
