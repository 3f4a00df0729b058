"""Fixtures for the devstack's own tests: the plugin's stand-ins plus a webhook catcher."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cairn_devstack.testing import StripeServer

PLUGIN = "cairn_devstack.pytest_plugin"


def pytest_configure(config: pytest.Config) -> None:
    # The root conftest loads the plugin for the whole repository; this makes
    # `pytest shared/devstack/tests` work on its own too, without loading it twice.
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)


@dataclass
class Delivery:
    """One webhook POST as it arrived."""

    body: bytes
    signature: str

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class WebhookCatcher:
    """A local HTTP endpoint that records every webhook delivery."""

    url: str
    secret: str = "whsec_devstack_test"
    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, event_type: str, *, match: Any = None, timeout: float = 5.0) -> Delivery:
        """The first delivery of ``event_type`` (whose data.object satisfies ``match``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for d in self.deliveries:
                    obj = d.event["data"]["object"]
                    if d.event["type"] == event_type and (match is None or match(obj)):
                        return d
            time.sleep(0.05)
        seen = [d.event["type"] for d in self.deliveries]
        raise AssertionError(f"no {event_type} webhook within {timeout}s; got {seen}")


@pytest.fixture(scope="session")
def webhooks(stripe_server: StripeServer) -> Iterator[WebhookCatcher]:
    """A webhook endpoint registered with the session's localstripe."""
    catcher: WebhookCatcher

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with catcher._lock:
                catcher.deliveries.append(Delivery(body, self.headers["Stripe-Signature"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    catcher = WebhookCatcher(url=f"http://127.0.0.1:{server.server_port}/stripe/webhook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stripe_server.register_webhook(catcher.url, catcher.secret)
    try:
        yield catcher
    finally:
        stripe_server.unregister_webhook()
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def stripe_client(stripe_server: StripeServer) -> Any:
    """The real ``stripe`` SDK pointed at the session's localstripe."""
    return stripe_server.client()


@dataclass
class Payer:
    """Creates a customer with a saved card and charges it, as Cairn's payments service does."""

    client: Any

    def customer_with_card(self, number: str = "4242424242424242") -> tuple[Any, Any]:
        customer = self.client.v1.customers.create({"email": "customer@example.com"})
        pm = self.client.v1.payment_methods.create(
            {
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            }
        )
        pm = self.client.v1.payment_methods.attach(pm.id, {"customer": customer.id})
        return customer, pm

    def charge(
        self,
        amount: int,
        transfer_group: str,
        *,
        number: str = "4242424242424242",
        idempotency_key: str | None = None,
    ) -> Any:
        customer, pm = self.customer_with_card(number)
        options = {"idempotency_key": idempotency_key} if idempotency_key else {}
        return self.client.v1.payment_intents.create(
            {
                "amount": amount,
                "currency": "eur",
                "customer": customer.id,
                "payment_method": pm.id,
                "confirm": True,
                "off_session": True,
                "transfer_group": transfer_group,
                "metadata": {"milestone_id": transfer_group},
            },
            options,
        )


@pytest.fixture
def payer(stripe_client: Any) -> Payer:
    """Helper that makes paid PaymentIntents."""
    return Payer(stripe_client)


@pytest.fixture
def ready_account(stripe_client: Any, stripe_server: StripeServer) -> Any:
    """A Custom connected account that finished onboarding."""
    account = stripe_client.v1.accounts.create(
        {
            "type": "custom",
            "country": "FR",
            "email": "freelancer@example.com",
            "capabilities": {"transfers": {"requested": True}},
        }
    )
    stripe_server.enable_payouts(account.id)
    return stripe_client.v1.accounts.retrieve(account.id)
