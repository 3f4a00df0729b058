"""Connect transfers and transfer reversals for localstripe (stock has neither).

Rules kept from Stripe, because Cairn's escrow depends on them:

- the destination must exist and be able to receive transfers: its ``transfers``
  capability must be ``active`` (here: after ``enable_payouts``), else 400
  ``insufficient_capabilities_for_transfer``;
- with ``source_transaction`` the transfer is funded by that charge: same currency, and
  no more than the charge less its refunds less what earlier transfers from it still
  hold (reversals give money back); without it, by the platform's balance in that
  currency (succeeded charges less refunds less transfers);
- a reversal cannot exceed what is left of the transfer.
"""

from __future__ import annotations

from typing import Any

import localstripe.server as ls_server
from aiohttp import web
from localstripe.resources import (
    Event,
    List,
    StripeObject,
    random_id,
    store,
    try_convert_to_int,
)
from localstripe.webhooks import schedule_webhook

from cairn_devstack.stripe.errors import format_amount, json_response, stripe_error

__all__ = ["Transfer", "TransferReversal", "add_transfer_routes"]


def _objects(prefix: str) -> list[Any]:
    return [v for k, v in store.items() if k.startswith(prefix + ":")]


def _positive_amount(raw: Any) -> int:
    amount = try_convert_to_int(raw)
    if not isinstance(amount, int) or amount <= 0:
        raise stripe_error(400, "Invalid positive integer", param="amount")
    return amount


class TransferReversal(StripeObject):  # type: ignore[misc]
    """Money taken back from a connected account (``trr_...``)."""

    object = "transfer_reversal"
    _id_prefix = "trr_"

    def __init__(
        self, transfer: Transfer, amount: int, metadata: dict[str, str] | None = None
    ) -> None:
        super().__init__()
        self.amount = amount
        self.currency = transfer.currency
        self.transfer = transfer.id
        self.metadata = dict(metadata or {})
        self.destination_payment_refund = "pyr_" + random_id(14)
        self.source_refund = None
        self.balance_transaction = None


class Transfer(StripeObject):  # type: ignore[misc]
    """A payment from the platform to a connected account (``tr_...``)."""

    object = "transfer"
    _id_prefix = "tr_"

    def __init__(
        self,
        amount: Any = None,
        currency: Any = None,
        destination: Any = None,
        source_transaction: Any = None,
        transfer_group: Any = None,
        metadata: dict[str, str] | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            name = sorted(kwargs)[0]
            raise stripe_error(400, f"Received unknown parameter: {name}", param=name)
        amount = _positive_amount(amount)
        if not isinstance(currency, str) or len(currency) != 3:
            raise stripe_error(400, "Missing required param: currency.", param="currency")
        currency = currency.lower()
        if not isinstance(destination, str):
            raise stripe_error(400, "Missing required param: destination.", param="destination")
        account = store.get("account:" + destination)
        if account is None:
            raise stripe_error(
                400,
                f"No such destination: '{destination}'",
                code="resource_missing",
                param="destination",
            )
        if account.capabilities.get("transfers") != "active":
            raise stripe_error(
                400,
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                code="insufficient_capabilities_for_transfer",
                param="destination",
            )
        if source_transaction is not None:
            available = self._available_from_charge(source_transaction, currency)
        else:
            available = self._platform_balance(currency)
        if amount > available:
            where = (
                f"source transaction {source_transaction}"
                if source_transaction
                else ("your balance")
            )
            raise stripe_error(
                400,
                f"Insufficient funds: the transfer amount ({format_amount(amount, currency)}) "
                f"exceeds what is available from {where} "
                f"({format_amount(max(available, 0), currency)}).",
                code="balance_insufficient",
                param="amount",
            )
        super().__init__()
        self.amount = amount
        self.currency = currency
        self.destination = destination
        self.destination_payment = "py_" + random_id(14)
        self.source_transaction = source_transaction
        self.source_type = "card"
        self.transfer_group = transfer_group
        self.metadata = dict(metadata or {})
        self.description = description
        self.balance_transaction = None
        schedule_webhook(Event("transfer.created", self))

    @staticmethod
    def _available_from_charge(charge_id: Any, currency: str) -> int:
        if not isinstance(charge_id, str) or not charge_id.startswith("ch_"):
            raise stripe_error(400, "Invalid source_transaction", param="source_transaction")
        charge = store.get("charge:" + charge_id)
        if charge is None:
            raise stripe_error(
                400,
                f"No such charge: '{charge_id}'",
                code="resource_missing",
                param="source_transaction",
            )
        if charge.status != "succeeded" or not charge.captured:
            raise stripe_error(
                400,
                f"Charge {charge_id} has not succeeded; it cannot fund a transfer.",
                param="source_transaction",
            )
        if charge.currency.lower() != currency:
            raise stripe_error(
                400,
                f"The currency of source_transaction's balance transaction "
                f"({charge.currency}) must be the same as the transfer currency ({currency})",
                param="currency",
            )
        earlier = [t for t in _objects("transfer") if t.source_transaction == charge_id]
        held = int(sum(t.amount - t.amount_reversed for t in earlier))
        return int(charge.amount) - int(charge.amount_refunded) - held

    @staticmethod
    def _platform_balance(currency: str) -> int:
        charged = sum(
            c.amount
            for c in _objects("charge")
            if c.status == "succeeded" and c.captured and c.currency.lower() == currency
        )
        refunded = sum(r.amount for r in _objects("refund") if r.currency.lower() == currency)
        transferred = sum(
            t.amount - t.amount_reversed for t in _objects("transfer") if t.currency == currency
        )
        return int(charged - refunded - transferred)

    @property
    def reversals(self) -> List:
        li = List(f"/v1/transfers/{self.id}/reversals")
        li._list = [r for r in _objects("transfer_reversal") if r.transfer == self.id]
        return li

    @property
    def amount_reversed(self) -> int:
        return sum(int(r.amount) for r in self.reversals._list)

    @property
    def reversed(self) -> bool:
        return bool(self.amount_reversed >= self.amount)

    @classmethod
    def _api_update(cls, id: str, **data: Any) -> Transfer:
        unknown = sorted(set(data) - {"metadata", "description"})
        if unknown:
            raise stripe_error(400, f"Received unknown parameter: {unknown[0]}", param=unknown[0])
        obj: Transfer = cls._api_retrieve(id)
        obj.metadata.update(data.get("metadata") or {})
        if "description" in data:
            obj.description = data["description"]
        return obj

    @classmethod
    def _api_delete(cls, id: str) -> Any:
        raise stripe_error(405, "Transfers cannot be deleted; reverse them instead.")

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        limit: Any = None,
        starting_after: Any = None,
        transfer_group: Any = None,
        destination: Any = None,
        **kwargs: Any,
    ) -> List:
        if kwargs:
            raise stripe_error(400, "Received unknown parameter: " + ", ".join(kwargs))
        li: List = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        li._list = [
            t
            for t in reversed(li._list)  # newest first, as Stripe lists
            if (transfer_group is None or t.transfer_group == transfer_group)
            and (destination is None or t.destination == destination)
        ]
        return li

    @classmethod
    def _api_create_reversal(
        cls,
        id: str,
        amount: Any = None,
        metadata: dict[str, str] | None = None,
        description: Any = None,  # accepted and ignored, as Stripe's is unused here
        refund_application_fee: Any = None,
        **kwargs: Any,
    ) -> TransferReversal:
        if kwargs:
            name = sorted(kwargs)[0]
            raise stripe_error(400, f"Received unknown parameter: {name}", param=name)
        transfer: Transfer = cls._api_retrieve(id)
        remaining = transfer.amount - transfer.amount_reversed
        if remaining <= 0:
            raise stripe_error(400, f"Transfer {id} has already been fully reversed.")
        wanted = remaining if amount is None else _positive_amount(amount)
        if wanted > remaining:
            raise stripe_error(
                400,
                f"Amount requested for reversal ({format_amount(wanted, transfer.currency)}) "
                f"is greater than the amount left on transfer {id} "
                f"({format_amount(remaining, transfer.currency)}).",
                code="amount_too_large",
                param="amount",
            )
        reversal = TransferReversal(transfer, wanted, metadata)
        schedule_webhook(Event("transfer.reversed", transfer))
        return reversal

    @classmethod
    def _api_list_reversals(cls, id: str, **kwargs: Any) -> List:
        transfer: Transfer = cls._api_retrieve(id)
        li: List = List(
            f"/v1/transfers/{id}/reversals",
            limit=kwargs.pop("limit", None),
            starting_after=kwargs.pop("starting_after", None),
        )
        li._list = transfer.reversals._list
        return li


async def _retrieve_reversal(request: web.Request) -> web.Response:
    reversal = TransferReversal._api_retrieve(request.match_info["reversal_id"])
    if reversal.transfer != request.match_info["id"]:
        raise stripe_error(404, "No such transfer reversal", code="resource_missing")
    return json_response(reversal._export())


def add_transfer_routes(app: web.Application) -> None:
    """Register the transfer and reversal endpoints on localstripe's app."""
    base = "/v1/transfers"
    app.router.add_post(base, ls_server.api_create(Transfer, base))
    app.router.add_get(base, ls_server.api_list_all(Transfer, base))
    app.router.add_get(base + "/{id}", ls_server.api_retrieve(Transfer, base))
    app.router.add_post(base + "/{id}", ls_server.api_update(Transfer, base))
    rev = base + "/{id}/reversals"
    app.router.add_post(rev, ls_server.api_extra(Transfer._api_create_reversal, rev))
    app.router.add_get(rev, ls_server.api_extra(Transfer._api_list_reversals, rev))
    app.router.add_get(rev + "/{reversal_id}", _retrieve_reversal)
