"""The one Stripe adapter: ``stripe.StripeClient`` against real Stripe or localstripe.

Every money-moving call carries the idempotency key the caller stored before the call.
Errors come out as three kinds the service layer understands:

- :class:`StripeUnknownOutcome`: timeout, dropped connection or 5xx — the call may or may
  not have happened; the escrow goes to reconciling and the object is looked up later;
- :class:`StripeDeclined`: the card was declined (402), with a sentence for the customer;
- :class:`StripeRefused`: any other 4xx: Stripe did nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import stripe

from cairn_payments.config import Settings


class StripeGatewayError(Exception):
    """Base of the gateway's errors."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class StripeUnknownOutcome(StripeGatewayError):
    """The call timed out or Stripe answered 5xx: its outcome is unknown."""


class StripeDeclined(StripeGatewayError):
    """The card was declined; ``message`` is readable by the customer."""

    def __init__(
        self, message: str, *, code: str | None = None, payment_intent_id: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.payment_intent_id = payment_intent_id


class StripeRefused(StripeGatewayError):
    """Stripe refused the request (4xx other than a decline); nothing happened."""


_DECLINE_SENTENCES = {
    "card_declined": "Your card was declined. Please use another card or contact your bank.",
    "insufficient_funds": "Your card has insufficient funds. Please use another card.",
    "expired_card": "Your card has expired. Please add a new card.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "Your bank could not process the payment. Please try again.",
}


def customer_sentence(code: str | None, message: str | None) -> str:
    """A sentence about a failed charge that a customer can read."""
    if code and code in _DECLINE_SENTENCES:
        return _DECLINE_SENTENCES[code]
    if message:
        return f"Your payment did not go through: {message}"
    return "Your payment did not go through. Please try another card."


@dataclass(frozen=True)
class ChargeResult:
    """What a PaymentIntent came to."""

    status: Literal["succeeded", "requires_action", "failed", "processing"]
    payment_intent_id: str
    charge_id: str | None = None
    client_secret: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None


def _get(obj: Any, name: str) -> Any:
    """Field ``name`` of a StripeObject or dict (None when absent)."""
    try:
        return obj[name]
    except (KeyError, TypeError):
        return getattr(obj, name, None)


def _id_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    found = _get(value, "id")
    return str(found) if found else None


def charge_result(pi: Any) -> ChargeResult:
    """A PaymentIntent (object or webhook payload) as a :class:`ChargeResult`."""
    status = str(_get(pi, "status"))
    charge_id = _id_of(_get(pi, "latest_charge"))
    error = _get(pi, "last_payment_error") or {}
    if status == "succeeded":
        kind: Literal["succeeded", "requires_action", "failed", "processing"] = "succeeded"
    elif status in ("requires_action", "requires_confirmation"):
        kind = "requires_action"
    elif status == "processing":
        kind = "processing"
    else:
        kind = "failed"
    return ChargeResult(
        status=kind,
        payment_intent_id=str(_get(pi, "id")),
        charge_id=charge_id,
        client_secret=_get(pi, "client_secret"),
        failure_code=_get(error, "decline_code") or _get(error, "code"),
        failure_message=_get(error, "message"),
    )


class StripeGateway:
    """Async calls to Stripe through one ``StripeClient``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        base: dict[str, str] = {}
        if settings.stripe_api_base:
            base = {"api": settings.stripe_api_base, "connect": settings.stripe_api_base}
        self.client = stripe.StripeClient(
            settings.stripe_api_key,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=settings.stripe_max_network_retries,
            http_client=stripe.HTTPXClient(timeout=settings.stripe_request_timeout_s),
        )

    # ---------------------------------------------------------------- plumbing
    @staticmethod
    def _options(key: str | None) -> Any:
        return {"idempotency_key": key} if key else {}

    @staticmethod
    def _translate(exc: stripe.StripeError) -> StripeGatewayError:
        status = exc.http_status or 0
        if isinstance(exc, stripe.APIConnectionError) or status >= 500 or status == 0:
            return StripeUnknownOutcome(f"Stripe did not answer clearly: {exc.user_message!r}")
        if isinstance(exc, stripe.CardError):
            error = exc.error
            code = (error.decline_code if error else None) or exc.code
            pi = _get(error, "payment_intent") if error is not None else None
            return StripeDeclined(
                customer_sentence(code, exc.user_message),
                code=code,
                payment_intent_id=_id_of(pi),
            )
        if status == 409:  # a concurrent request with the same key is still running
            return StripeUnknownOutcome(f"Stripe is still processing this key: {exc.user_message}")
        if status == 429:  # rate limited: nothing was done, but it must be tried again later
            return StripeUnknownOutcome(f"Stripe is rate limiting: {exc.user_message}")
        return StripeRefused(str(exc.user_message or exc), code=exc.code)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except stripe.StripeError as exc:
            raise self._translate(exc) from exc

    # ---------------------------------------------------------------- profiles
    async def create_customer(
        self, *, marketplace_id: str, user_id: str, email: str | None, key: str
    ) -> str:
        """A Stripe Customer for one (marketplace, user)."""
        params: dict[str, Any] = {
            "metadata": {"marketplace_id": marketplace_id, "user_id": user_id}
        }
        if email:
            params["email"] = email
        customer = await self._call(
            self.client.v1.customers.create_async, params, self._options(key)
        )
        return str(customer.id)

    async def create_setup_intent(self, customer_id: str) -> tuple[str, str]:
        """A SetupIntent for saving a card off-session: (id, client secret)."""
        si = await self._call(
            self.client.v1.setup_intents.create_async,
            {"customer": customer_id, "usage": "off_session", "payment_method_types": ["card"]},
        )
        return str(si.id), str(si.client_secret)

    async def attach_default_payment_method(self, customer_id: str, payment_method_id: str) -> str:
        """Attach a tokenised card to the customer and make it their default; its brand/last4."""
        pm = await self._call(
            self.client.v1.payment_methods.attach_async,
            payment_method_id,
            {"customer": customer_id},
        )
        await self._call(
            self.client.v1.customers.update_async,
            customer_id,
            {"invoice_settings": {"default_payment_method": payment_method_id}},
        )
        card = _get(pm, "card") or {}
        return f"{_get(card, 'brand') or 'card'} •••• {_get(card, 'last4') or '????'}"

    async def create_account(
        self, *, marketplace_id: str, user_id: str, email: str | None, key: str
    ) -> str:
        """A Custom connected account for one (marketplace, freelancer)."""
        params: dict[str, Any] = {
            "type": "custom",
            "country": self.settings.stripe_account_country,
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"marketplace_id": marketplace_id, "user_id": user_id},
        }
        if email:
            params["email"] = email
        account = await self._call(self.client.v1.accounts.create_async, params, self._options(key))
        return str(account.id)

    async def create_account_link(self, account_id: str, refresh_url: str, return_url: str) -> str:
        """An onboarding link for the freelancer's connected account."""
        link = await self._call(
            self.client.v1.account_links.create_async,
            {
                "account": account_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            },
        )
        return str(link.url)

    async def payouts_enabled(self, account_id: str) -> bool:
        """Whether the connected account can receive transfers and payouts now."""
        account = await self._call(self.client.v1.accounts.retrieve_async, account_id)
        return bool(_get(account, "payouts_enabled"))

    # ------------------------------------------------------------------ money
    async def charge(
        self,
        *,
        amount: int,
        currency: str,
        customer_id: str,
        payment_method_id: str,
        transfer_group: str,
        metadata: Mapping[str, str],
        key: str,
    ) -> ChargeResult:
        """An off-session PaymentIntent on the saved card, confirmed at once."""
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "customer": customer_id,
            "payment_method": payment_method_id,
            "off_session": True,
            "confirm": True,
            "transfer_group": transfer_group,
            "metadata": dict(metadata),
        }
        try:
            pi = await self._call(
                self.client.v1.payment_intents.create_async, params, self._options(key)
            )
        except StripeDeclined as exc:
            if exc.code == "authentication_required" and exc.payment_intent_id:
                # Real Stripe refuses SCA off-session; the customer confirms it on-session.
                return await self.retrieve_charge(exc.payment_intent_id)
            raise
        return charge_result(pi)

    async def retrieve_charge(self, payment_intent_id: str) -> ChargeResult:
        """The current state of a PaymentIntent."""
        pi = await self._call(self.client.v1.payment_intents.retrieve_async, payment_intent_id)
        result = charge_result(pi)
        if result.status == "failed" and _get(pi, "status") == "requires_payment_method":
            # Off-session SCA on real Stripe: the customer can still confirm it.
            error = _get(pi, "last_payment_error") or {}
            if _get(error, "code") == "authentication_required":
                return ChargeResult(
                    status="requires_action",
                    payment_intent_id=result.payment_intent_id,
                    client_secret=result.client_secret,
                )
        return result

    async def cancel_payment_intent(self, payment_intent_id: str) -> None:
        """Cancel a PaymentIntent still waiting for the customer (a newer attempt replaced it)."""
        await self._call(self.client.v1.payment_intents.cancel_async, payment_intent_id)

    async def find_charge(
        self, *, customer_id: str, milestone_id: str, attempt: int
    ) -> ChargeResult | None:
        """The PaymentIntent of (milestone, attempt), looked up by its metadata."""
        page = await self._call(
            self.client.v1.payment_intents.list_async, {"customer": customer_id, "limit": 100}
        )
        for pi in page.data:
            meta = _get(pi, "metadata") or {}
            if _get(meta, "milestone_id") == milestone_id and str(_get(meta, "attempt")) == str(
                attempt
            ):
                return charge_result(pi)
        return None

    async def transfer(
        self,
        *,
        amount: int,
        currency: str,
        destination: str,
        source_transaction: str,
        transfer_group: str,
        metadata: Mapping[str, str],
        key: str,
    ) -> str:
        """Move ``amount`` of the charge to the freelancer's connected account."""
        transfer = await self._call(
            self.client.v1.transfers.create_async,
            {
                "amount": amount,
                "currency": currency.lower(),
                "destination": destination,
                "source_transaction": source_transaction,
                "transfer_group": transfer_group,
                "metadata": dict(metadata),
            },
            self._options(key),
        )
        return str(transfer.id)

    async def find_transfer(self, *, transfer_group: str, operation: str) -> str | None:
        """The transfer of one milestone operation, looked up by transfer group + metadata."""
        page = await self._call(
            self.client.v1.transfers.list_async, {"transfer_group": transfer_group, "limit": 100}
        )
        for transfer in page.data:
            if _get(_get(transfer, "metadata") or {}, "operation") == operation:
                return str(transfer.id)
        return None

    async def refund(
        self, *, charge_id: str, amount: int, metadata: Mapping[str, str], key: str
    ) -> str:
        """Give ``amount`` of the charge back to the customer's card."""
        refund = await self._call(
            self.client.v1.refunds.create_async,
            {"charge": charge_id, "amount": amount, "metadata": dict(metadata)},
            self._options(key),
        )
        return str(refund.id)

    async def find_refund(self, *, charge_id: str, operation: str) -> str | None:
        """The refund of one milestone operation, looked up by charge + metadata."""
        page = await self._call(
            self.client.v1.refunds.list_async, {"charge": charge_id, "limit": 100}
        )
        for refund in page.data:
            if _get(refund, "charge") != charge_id:
                continue
            if _get(_get(refund, "metadata") or {}, "operation") == operation:
                return str(refund.id)
        return None

    async def reverse_transfer(
        self, *, transfer_id: str, amount: int, metadata: Mapping[str, str], key: str
    ) -> str:
        """Take ``amount`` of a transfer back from the connected account."""
        reversal = await self._call(
            self.client.v1.transfers.reversals.create_async,
            transfer_id,
            {"amount": amount, "metadata": dict(metadata)},
            self._options(key),
        )
        return str(reversal.id)

    async def find_reversal(self, *, transfer_id: str) -> str | None:
        """A reversal of the transfer, if one was made."""
        page = await self._call(
            self.client.v1.transfers.reversals.list_async, transfer_id, {"limit": 100}
        )
        for reversal in page.data:
            return str(reversal.id)
        return None

    async def balance_transactions(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Recent balance transactions of the platform (for the reconciliation report)."""
        page = await self._call(self.client.v1.balance_transactions.list_async, {"limit": limit})
        return [dict(item) for item in page.data]

    def construct_event(self, payload: bytes, signature: str) -> Any:
        """Verify a webhook's signature on the raw body and parse it (raises ValueError or
        ``stripe.SignatureVerificationError``)."""
        return stripe.Webhook.construct_event(
            payload,
            signature,
            self.settings.stripe_webhook_secret,
            tolerance=self.settings.stripe_webhook_tolerance_s,
        )
