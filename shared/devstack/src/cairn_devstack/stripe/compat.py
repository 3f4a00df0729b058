"""Fixes to stock localstripe resources where it strays from Stripe in ways Cairn relies on.

- PaymentIntents accept ``transfer_group`` (and ``description``,
  ``automatic_payment_methods``) and copy ``transfer_group`` onto the Charge they create;
  the list accepts the ``customer`` filter.
- ``latest_charge`` is an id unless expanded, as on Stripe (stock inlines the Charge).
- A declined confirm carries the PaymentIntent in the error, as on Stripe.
- Refunds cannot exceed what is left on the charge, and a refund without an amount
  refunds the rest (stock refunds the full charge again); ``charge.refunded`` is sent.
- Missing objects answer Stripe's ``resource_missing`` 404 instead of a bare "Not Found".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localstripe.errors import UserError
from localstripe.resources import (
    Charge,
    Event,
    PaymentIntent,
    Refund,
    StripeObject,
    store,
    try_convert_to_int,
)
from localstripe.webhooks import schedule_webhook

from cairn_devstack.stripe.errors import format_amount, stripe_error

__all__ = ["install_compat"]

_PI_EXTRA_FIELDS = ("transfer_group", "description", "automatic_payment_methods")


def _patch_payment_intent() -> None:
    original_init: Callable[..., None] = PaymentIntent.__init__
    original_create_charge: Callable[..., None] = PaymentIntent._create_charge
    original_export: Callable[..., dict[str, Any]] = PaymentIntent._export
    original_report_failure: Callable[..., None] = PaymentIntent._report_failure

    def __init__(self: Any, **data: Any) -> None:
        extra = {name: data.pop(name, None) for name in _PI_EXTRA_FIELDS}
        tg = extra["transfer_group"]
        if tg is not None and (not isinstance(tg, str) or not tg):
            raise stripe_error(400, "Invalid transfer_group", param="transfer_group")
        original_init(self, **data)
        for name, value in extra.items():
            setattr(self, name, value)

    def _create_charge(self: Any, on_failure_now: Any) -> None:
        try:
            original_create_charge(self, on_failure_now)
        finally:
            # Also on a decline, which raises from inside: the failed charge is real too.
            if self.latest_charge is not None:
                self.latest_charge.transfer_group = getattr(self, "transfer_group", None)

    def _report_failure(self: Any) -> None:
        try:
            original_report_failure(self)
        except UserError as exc:
            exc.body["error"]["payment_intent"] = self._export()
            exc.body["error"].setdefault("decline_code", "generic_decline")
            raise

    def _export(self: Any, expand: list[str] | None = None) -> dict[str, Any]:
        paths = list(expand or [])
        charge_paths = [p for p in paths if p.split(".", 1)[0] == "latest_charge"]
        obj = original_export(self, expand=[p for p in paths if p not in charge_paths])
        if self.latest_charge is not None:
            if charge_paths:
                deeper = [p.split(".", 1)[1] for p in charge_paths if "." in p]
                obj["latest_charge"] = self.latest_charge._export(expand=deeper)
            else:
                obj["latest_charge"] = self.latest_charge.id
        return obj

    original_list: Callable[..., Any] = PaymentIntent._api_list_all.__func__

    def _api_list_all(cls: Any, /, url: str, customer: str | None = None, **kwargs: Any) -> Any:
        li = original_list(cls, url, **kwargs)
        if customer is not None:
            li._list = [pi for pi in li._list if pi.customer == customer]
        return li

    PaymentIntent.__init__ = __init__
    PaymentIntent._create_charge = _create_charge
    PaymentIntent._report_failure = _report_failure
    PaymentIntent._export = _export
    PaymentIntent._api_list_all = classmethod(_api_list_all)


def _patch_charge() -> None:
    original_init: Callable[..., None] = Charge.__init__

    def __init__(self: Any, transfer_group: str | None = None, **data: Any) -> None:
        original_init(self, **data)
        self.transfer_group = transfer_group

    Charge.__init__ = __init__


def _charge_for_refund(data: dict[str, Any]) -> Any | None:
    """The Charge a refund request points at, or None to let stock code report the error."""
    charge_id = data.get("charge")
    if isinstance(charge_id, str):
        return Charge._api_retrieve(charge_id)
    pi_id = data.get("payment_intent")
    if isinstance(pi_id, str):
        return PaymentIntent._api_retrieve(pi_id).latest_charge
    return None


def _patch_refund() -> None:
    original_create: Callable[..., Any] = Refund._api_create.__func__

    def _api_create(cls: Any, /, **data: Any) -> Any:
        charge = _charge_for_refund(data)
        if charge is not None and charge.status == "succeeded":
            remaining = charge.amount - charge.amount_refunded
            if remaining <= 0:
                raise stripe_error(
                    400,
                    f"Charge {charge.id} has already been refunded.",
                    code="charge_already_refunded",
                )
            amount = try_convert_to_int(data.get("amount"))
            if amount is None:
                data["amount"] = remaining
            elif isinstance(amount, int) and amount > remaining:
                raise stripe_error(
                    400,
                    f"Refund amount ({format_amount(amount, charge.currency)}) is greater "
                    f"than unrefunded amount on charge "
                    f"({format_amount(remaining, charge.currency)})",
                    code="amount_too_large",
                    param="amount",
                )
        refund = original_create(cls, **data)
        schedule_webhook(Event("charge.refunded", Charge._api_retrieve(refund.charge)))
        return refund

    Refund._api_create = classmethod(_api_create)


def _patch_not_found() -> None:
    def _api_retrieve(cls: Any, /, id: str) -> Any:
        obj = store.get(f"{cls.object}:{id}")
        if obj is None:
            raise stripe_error(
                404, f"No such {cls.object}: '{id}'", code="resource_missing", param="id"
            )
        return obj

    StripeObject._api_retrieve = classmethod(_api_retrieve)


def install_compat() -> None:
    """Apply every patch in this module (call once, before the server starts)."""
    _patch_payment_intent()
    _patch_charge()
    _patch_refund()
    _patch_not_found()
