"""``make demo``: walk the vertical slice through the HTTP APIs of a running ``make run``.

A customer posts a job, a freelancer proposes, the customer accepts (the contract goes
live), saves a card, the freelancer adds a milestone (the customer is emailed), the
customer pays (the card is charged through localstripe), the milestone is funded and the
freelancer is emailed "start work". Every step is printed.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import stripe

from cairn_devstack.sse import ServerEvent, events


class Demo:
    """Calls the APIs as the demo users of ``.data/stack.json``."""

    def __init__(self, stack_file: Path) -> None:
        info = json.loads(stack_file.read_text())
        self.urls: dict[str, str] = info["urls"]
        self.tokens: dict[str, str] = info["tokens"]
        self.users: dict[str, list[str]] = info["users"]
        self.http = httpx.Client(timeout=15)

    def call(self, role: str, method: str, service: str, path: str, body: Any = None) -> Any:
        headers = {"authorization": f"Bearer {self.tokens[role]}"}
        if method == "POST":
            headers["idempotency-key"] = uuid.uuid4().hex
        r = self.http.request(method, self.urls[service] + path, json=body, headers=headers)
        if r.status_code >= 400:
            raise SystemExit(f"{method} {path} as {role} failed ({r.status_code}): {r.text}")
        return r.json()

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.2)
        raise SystemExit(f"timed out waiting for {what}")

    def cursor(self, role: str, contract_id: str) -> str:
        """Where the contract's live updates are now (the snapshot's id)."""
        cursor: str = self.follow(role, contract_id, None, lambda event: event.id)
        return cursor

    def follow(
        self,
        role: str,
        contract_id: str,
        last_event_id: str | None,
        until: Callable[[ServerEvent], Any],
        timeout: float = 30,
    ) -> Any:
        """Read the contract's live updates (Server-Sent Events) from ``last_event_id``
        until ``until`` returns something."""
        headers = {"authorization": f"Bearer {self.tokens[role]}"}
        if last_event_id is not None:
            headers["last-event-id"] = last_event_id
        url = f"{self.urls['contracts']}/v1/contracts/{contract_id}/events"
        deadline = time.monotonic() + timeout
        with self.http.stream("GET", url, headers=headers, timeout=timeout) as r:
            if r.status_code != 200:
                raise SystemExit(f"GET {url} as {role} failed ({r.status_code})")
            for event in events(r.iter_lines()):
                if (found := until(event)) is not None:
                    return found
                if time.monotonic() > deadline:
                    break
        raise SystemExit(f"timed out following contract {contract_id}")

    def mail_to(self, email: str, contains: str) -> Any:
        messages = self.http.get(self.urls["mail"] + "/api/messages").json()
        return [m for m in messages if email in m["to"] and contains in m["subject"]]


def step(n: int, text: str) -> None:
    print(f"{n:>2}. {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the walk-through; exit non-zero if any step fails."""
    stack_file = Path((argv or sys.argv[1:] or [".data/stack.json"])[0])
    if not stack_file.exists():
        print("No running stack found: start it with `make run` first.", file=sys.stderr)
        return 1
    d = Demo(stack_file)
    customer_email = d.users["customer"][1]
    freelancer_email = d.users["freelancer"][1]

    job = d.call(
        "customer",
        "POST",
        "contracts",
        "/v1/jobs",
        {"title": "Brand identity", "description": "A logo and a colour palette"},
    )
    step(1, f"customer posted job {job['id']} '{job['title']}'")
    proposal = d.call(
        "freelancer",
        "POST",
        "contracts",
        f"/v1/jobs/{job['id']}/proposals",
        {"cover_letter": "I have designed 40 logos for small studios."},
    )
    step(2, f"freelancer sent proposal {proposal['id']} (state {proposal['state']})")
    contract = d.call("customer", "POST", "contracts", f"/v1/contracts/{proposal['id']}/accept")
    step(3, f"customer accepted it: contract {contract['id']} is {contract['state']}")

    client = stripe.StripeClient(
        api_key="sk_test_cairn_local", base_addresses={"api": d.urls["stripe"]}
    )
    pm = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    d.call(
        "customer",
        "POST",
        "payments",
        "/v1/payment-profiles/me/payment-methods",
        {"payment_method_id": pm.id},
    )
    step(4, f"customer saved a card ({pm.id}) with the payments service")

    milestone = d.call(
        "freelancer",
        "POST",
        "contracts",
        f"/v1/contracts/{contract['id']}/milestones",
        {"title": "Logo concepts", "description": "Three directions", "amount": 50000},
    )
    step(
        5,
        f"freelancer added milestone {milestone['id']} 'Logo concepts' for 500.00 EUR "
        f"(state {milestone['state']})",
    )
    mail = d.wait("the customer's email", lambda: d.mail_to(customer_email, "Logo concepts"))
    step(6, f"customer was emailed: '{mail[0]['subject']}'")

    cursor = d.cursor("customer", contract["id"])
    paid = d.call("customer", "POST", "contracts", f"/v1/milestones/{milestone['id']}/pay")
    step(7, f"customer pressed pay: milestone is {paid['state']}")

    def funded(event: ServerEvent) -> Any:
        shown = event.json().get("milestone") or {}
        return shown if shown.get("id") == milestone["id"] and shown["state"] == "funded" else None

    # Pushed, not polled: the contract's live updates from just before the payment.
    d.follow("customer", contract["id"], cursor, funded)
    escrow = d.call("customer", "GET", "payments", f"/v1/escrow/{milestone['id']}")
    step(
        8,
        f"payments charged the card through localstripe; the live updates pushed "
        f"'funded' (escrow: {json.dumps(escrow)})",
    )
    mail = d.wait("the freelancer's email", lambda: d.mail_to(freelancer_email, "Logo"))
    step(9, f"freelancer was emailed: '{mail[-1]['subject']}' — see {d.urls['mail']}")
    print("\nThe slice works end to end.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
