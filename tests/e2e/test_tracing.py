"""One trace follows a pay command across the three services (issue 19, item 3): the
contracts API's request, the outbox row and the Kafka record (``ce_traceparent``), the
payments consumer and its Stripe call, payments' own event, and the notifications
consumer and its SMTP send — read from the span files every process writes
(``OTEL_TRACES_EXPORTER=file``, set for the whole e2e stack)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cairn_devstack.stack import wait_until

from tests.e2e.conftest import Env
from tests.e2e.test_slice import live_contract, marketplace, save_card


def spans(env: Env) -> list[dict[str, Any]]:
    folder = Path(env.stack.extra_env["CAIRN_OTEL_TRACES_DIR"])
    found = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                span = json.loads(line)
                span["file"] = path.name
                found.append(span)
    return found


def service(span: dict[str, Any]) -> str:
    return str(span["resource"]["attributes"]["service.name"])


def test_one_trace_spans_contracts_payments_and_notifications_for_a_pay_command(
    env: Env,
) -> None:
    _, _, customer, freelancer = marketplace(env)
    save_card(env, customer)
    contract_id = live_contract(customer, freelancer)
    milestone = freelancer.post(
        "contracts",
        f"/v1/contracts/{contract_id}/milestones",
        {"title": "Traced work", "amount": 12000},
        expect=201,
    )
    customer.post("contracts", f"/v1/milestones/{milestone['id']}/pay")
    wait_until(
        lambda: (
            customer.get("contracts", f"/v1/milestones/{milestone['id']}/history")[-1]["to_state"]
            == "funded"
        ),
        timeout=60,
        what="the milestone to be funded",
    )

    def pay_request() -> dict[str, Any] | None:
        for span in spans(env):
            attributes = span["attributes"]
            if (
                span["kind"] == "SpanKind.SERVER"
                and attributes.get("http.route") == "/v1/milestones/{milestone_id}/pay"
                and milestone["id"]
                in str(attributes.get("url.path", attributes.get("http.target")))
            ):
                return span
        return None

    wait_until(lambda: pay_request() is not None, timeout=30, what="the pay request's span")
    request = pay_request()
    assert request is not None
    assert service(request) == "cairn-contracts"
    trace_id = request["context"]["trace_id"]

    def in_trace() -> list[dict[str, Any]]:
        return [s for s in spans(env) if s["context"]["trace_id"] == trace_id]

    def names() -> set[tuple[str, str]]:
        return {(service(s), s["name"]) for s in in_trace()}

    wanted = {
        ("cairn-contracts", "cairn.contracts.v1 publish"),
        ("cairn-payments", "payments process cairn.milestone.funding_requested"),
        ("cairn-payments", "cairn.payments.v1 publish"),
        ("cairn-contracts", "contracts process cairn.payment.funded"),
        ("cairn-notifications", "notifications process cairn.milestone.funded"),
        ("cairn-notifications", "smtp send"),
    }
    wait_until(lambda: wanted <= names(), timeout=60, what=f"the trace's spans: {wanted}")
    trace = in_trace()
    by_id = {s["context"]["span_id"]: s for s in trace}
    consume = next(s for s in trace if s["name"].endswith("cairn.milestone.funding_requested"))
    assert service(by_id[consume["parent_id"]]) == "cairn-contracts", "continues the request"
    stripe_calls = [
        s
        for s in trace
        if service(s) == "cairn-payments"
        and s["kind"] == "SpanKind.CLIENT"
        and str(s["attributes"].get("url.full", s["attributes"].get("http.url", ""))).startswith(
            env.stripe.api_base
        )
    ]
    assert stripe_calls, "the Stripe call is in the trace"
    assert any(
        service(s) == "cairn-payments" and s["attributes"].get("db.system") == "postgresql"
        for s in trace
    ), "and the payments consumer's statements"
    sends = [s for s in trace if s["name"] == "smtp send"]
    assert "milestone_funded.freelancer" in {s["attributes"]["cairn.email.template"] for s in sends}
