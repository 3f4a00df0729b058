"""Connect accounts for localstripe (stock has none): Custom accounts, account links and
a dev-only switch that plays the part of the freelancer finishing onboarding.

An account starts restricted (``charges_enabled``/``payouts_enabled`` false, its
``transfers`` capability ``inactive``); ``POST /_config/accounts/{id}/enable_payouts``
(or the page an account link points at) makes it ready and sends ``account.updated``,
the event Cairn waits for before releasing held money.
"""

from __future__ import annotations

import html
import time
from typing import Any
from urllib.parse import urlencode

import localstripe.server as ls_server
from aiohttp import web
from localstripe.resources import Event, List, StripeObject, try_convert_to_bool
from localstripe.webhooks import schedule_webhook

from cairn_devstack.stripe.errors import json_response, stripe_error

__all__ = ["Account", "add_account_routes"]

_UPDATABLE = (
    "business_profile",
    "business_type",
    "capabilities",
    "company",
    "default_currency",
    "email",
    "external_account",
    "individual",
    "metadata",
    "settings",
    "tos_acceptance",
)
_DUE_AT_START = ["business_type", "external_account", "tos_acceptance.date", "tos_acceptance.ip"]


def _requirements(due: list[str]) -> dict[str, Any]:
    return {
        "currently_due": list(due),
        "eventually_due": list(due),
        "past_due": list(due),
        "pending_verification": [],
        "errors": [],
        "current_deadline": None,
        "disabled_reason": "requirements.past_due" if due else None,
    }


class Account(StripeObject):  # type: ignore[misc]
    """A connected account (``acct_...``), restricted until onboarding is done."""

    object = "account"
    _id_prefix = "acct_"

    def __init__(
        self,
        type: str = "custom",
        country: str = "US",
        email: str | None = None,
        capabilities: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        **fields: Any,
    ) -> None:
        unknown = sorted(set(fields) - set(_UPDATABLE))
        if unknown:
            raise stripe_error(400, f"Received unknown parameter: {unknown[0]}", param=unknown[0])
        if type not in ("custom", "express", "standard"):
            raise stripe_error(400, f"Invalid type: {type}", param="type")
        if not isinstance(country, str) or len(country) != 2:
            raise stripe_error(400, "country must be a two-letter ISO code", param="country")
        if email is not None and not isinstance(email, str):
            raise stripe_error(400, "Invalid email", param="email")
        self._check_capabilities(capabilities)
        super().__init__()
        self.type = type
        self.country = country.upper()
        self.email = email
        self.metadata = dict(metadata or {})
        self.charges_enabled = False
        self.payouts_enabled = False
        self.details_submitted = False
        self.capabilities: dict[str, str] = {}
        self._request_capabilities(capabilities)
        self.requirements = _requirements(_DUE_AT_START)
        # Every updatable field exists from the start, so an update can always set it.
        for name in _UPDATABLE:
            if name not in ("capabilities", "email", "metadata"):
                setattr(self, name, fields.get(name))
        self.default_currency = fields.get("default_currency") or (
            "usd" if self.country == "US" else "eur"
        )

    @staticmethod
    def _check_capabilities(capabilities: Any) -> None:
        if capabilities is None:
            return
        if not isinstance(capabilities, dict) or not all(
            isinstance(v, dict) for v in capabilities.values()
        ):
            raise stripe_error(400, "Invalid capabilities", param="capabilities")

    def _request_capabilities(self, capabilities: dict[str, Any] | None) -> None:
        for name, wish in (capabilities or {}).items():
            if try_convert_to_bool(wish.get("requested")) is True:
                self.capabilities[name] = "active" if self.payouts_enabled else "inactive"
            else:
                self.capabilities.pop(name, None)

    @classmethod
    def _api_update(cls, id: str, **data: Any) -> Account:
        unknown = sorted(set(data) - set(_UPDATABLE))
        if unknown:
            raise stripe_error(400, f"Received unknown parameter: {unknown[0]}", param=unknown[0])
        obj: Account = cls._api_retrieve(id)
        cls._check_capabilities(data.get("capabilities"))
        before = obj._export()
        obj._request_capabilities(data.pop("capabilities", None))
        obj.metadata.update(data.pop("metadata", None) or {})
        for name, value in data.items():
            setattr(obj, name, value)
        obj._announce_update(before)
        return obj

    def _set_ready(self, ready: bool, *, announce: bool = True) -> None:
        """Play the freelancer finishing (or losing) onboarding; ``announce=False`` plays
        the ``account.updated`` webhook getting lost."""
        before = self._export()
        self.charges_enabled = self.payouts_enabled = self.details_submitted = ready
        self.requirements = _requirements([] if ready else _DUE_AT_START)
        # Cairn pays freelancers by transfer, so a ready account can receive them.
        self.capabilities.setdefault("transfers", "inactive")
        for name in self.capabilities:
            self.capabilities[name] = "active" if ready else "inactive"
        if announce:
            self._announce_update(before)

    def _announce_update(self, before: dict[str, Any]) -> None:
        after = self._export()
        previous = {k: v for k, v in before.items() if after.get(k) != v}
        event = Event("account.updated", self)
        # Stripe puts the connected account on Connect events and the changed fields'
        # old values in previous_attributes.
        event.account = self.id
        event.data["previous_attributes"] = previous
        schedule_webhook(event)

    @classmethod
    def _api_list_all(
        cls, url: str, limit: Any = None, starting_after: Any = None, **kwargs: Any
    ) -> List:
        if kwargs:
            raise stripe_error(400, "Received unknown parameter: " + ", ".join(kwargs))
        li: List = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        li._list = list(reversed(li._list))  # newest first, as Stripe lists
        return li


async def _create_account_link(request: web.Request) -> web.Response:
    data = await ls_server.get_post_data(request) or {}
    account = data.get("account")
    link_type = data.get("type")
    if not isinstance(account, str):
        raise stripe_error(400, "Missing required param: account.", param="account")
    if link_type not in ("account_onboarding", "account_update"):
        raise stripe_error(400, "Invalid type: must be account_onboarding or account_update")
    Account._api_retrieve(account)
    query = {k: data[k] for k in ("return_url", "refresh_url") if isinstance(data.get(k), str)}
    now = int(time.time())
    url = f"{request.scheme}://{request.host}/_config/onboarding/{account}"
    return json_response(
        {
            "object": "account_link",
            "created": now,
            "expires_at": now + 300,
            "url": url + ("?" + urlencode(query) if query else ""),
        }
    )


async def _enable_payouts(request: web.Request) -> web.Response:
    account: Account = Account._api_retrieve(request.match_info["id"])
    # ?webhook=false: the account becomes ready but its webhook is "lost" (tests of the
    # paths that must not depend on webhook delivery).
    account._set_ready(True, announce=request.query.get("webhook", "true") != "false")
    return json_response(account._export())


async def _disable_payouts(request: web.Request) -> web.Response:
    account: Account = Account._api_retrieve(request.match_info["id"])
    account._set_ready(False)
    return json_response(account._export())


async def _onboarding_page(request: web.Request) -> web.Response:
    account: Account = Account._api_retrieve(request.match_info["id"])
    state = "ready" if account.payouts_enabled else "not ready"
    body = f"""<!doctype html><title>Onboarding {html.escape(account.id)}</title>
<h1>Local Stripe onboarding</h1>
<p>Account <code>{html.escape(account.id)}</code> ({html.escape(str(account.email))}) is
{state}. On real Stripe the freelancer would now enter identity and bank details.</p>
<form method="post"><button type="submit">Complete onboarding</button></form>"""
    return web.Response(text=body, content_type="text/html")


async def _complete_onboarding(request: web.Request) -> web.StreamResponse:
    account: Account = Account._api_retrieve(request.match_info["id"])
    account._set_ready(True)
    return_url = request.query.get("return_url")
    if return_url and return_url.startswith(("http://", "https://")):
        raise web.HTTPSeeOther(return_url)
    return web.Response(text=f"{account.id} is ready for payouts.\n")


def add_account_routes(app: web.Application) -> None:
    """Register the account endpoints on localstripe's app."""
    base = "/v1/accounts"
    app.router.add_post(base, ls_server.api_create(Account, base))
    app.router.add_get(base, ls_server.api_list_all(Account, base))
    app.router.add_get(base + "/{id}", ls_server.api_retrieve(Account, base))
    app.router.add_post(base + "/{id}", ls_server.api_update(Account, base))
    app.router.add_delete(base + "/{id}", ls_server.api_delete(Account, base))
    app.router.add_post("/v1/account_links", _create_account_link)
    app.router.add_post("/_config/accounts/{id}/enable_payouts", _enable_payouts)
    app.router.add_post("/_config/accounts/{id}/disable_payouts", _disable_payouts)
    app.router.add_get("/_config/onboarding/{id}", _onboarding_page)
    app.router.add_post("/_config/onboarding/{id}", _complete_onboarding)
