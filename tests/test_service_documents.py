"""Each service's console script prints a valid OpenAPI and AsyncAPI document — what front
ends and subscribing services read."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cairn_chassis.errors import Problem
from cairn_schemas import topics
from cairn_schemas.cloudevents import to_kafka
from cairn_schemas.registry import events_on
from cairn_schemas.samples import sample
from openapi_spec_validator import validate

SERVICES = ["contracts", "payments", "notifications"]
PUBLISHES = {
    "contracts": {topics.CONTRACTS, topics.MARKETPLACES},
    "payments": {topics.PAYMENTS},
    "notifications": {topics.NOTIFICATIONS},
}


@functools.cache
def document(service: str, kind: str) -> dict[str, object]:
    script = Path(sys.executable).parent / f"cairn-{service}"
    out = subprocess.run(
        [str(script), kind],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ | {"CAIRN_JWT_SECRET": "documents-only"},
    )
    doc: dict[str, object] = json.loads(out.stdout)
    return doc


@pytest.mark.parametrize("service", SERVICES)
def test_openapi_document_is_valid_and_versioned(service: str) -> None:
    doc = document(service, "openapi")
    validate(doc)  # raises on an invalid OpenAPI 3.1 document
    paths = doc["paths"]
    assert isinstance(paths, dict)
    assert {"/healthz", "/readyz"} <= set(paths)
    assert "/metrics" not in paths, "metrics are on the internal port (issue 19, item 7)"
    assert all(p.startswith("/v1/") for p in paths if p not in ("/healthz", "/readyz"))


@pytest.mark.parametrize("service", SERVICES)
def test_openapi_prints_without_any_secret(service: str) -> None:
    """A release pipeline prints the document with none of the deployment's settings."""
    script = Path(sys.executable).parent / f"cairn-{service}"
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "KAFKA_"))}
    out = subprocess.run([str(script), "openapi"], capture_output=True, text=True, env=bare)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == document(service, "openapi")


@pytest.mark.parametrize("service", SERVICES)
def test_openapi_documents_the_real_error_bodies_auth_and_idempotency_key(service: str) -> None:
    # What a client generated from the document needs: errors are problem+json with a
    # stable code (never FastAPI's default validation body), which operations need a
    # bearer token, and where Idempotency-Key is accepted.
    doc = document(service, "openapi")
    assert "HTTPValidationError" not in json.dumps(doc)
    problem_schema = doc["components"]["schemas"]["Problem"]  # type: ignore[index]
    real = Problem(409, "milestone.wrong_state", "Only an approved milestone can be paid.")
    jsonschema.validate(real.body("/v1/milestones/m1/pay"), problem_schema)
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]  # type: ignore[index]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    secured = 0
    for path, operations in doc["paths"].items():  # type: ignore[attr-defined]
        if not path.startswith("/v1/"):
            continue
        for method, op in operations.items():
            for status in ("404", "409", "422"):
                content = op["responses"][status]["content"]
                assert content == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, status)
            headers = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
            if op.get("security") == [{"bearerAuth": []}]:
                secured += 1
                assert {"401", "403"} <= set(op["responses"]), (method, path)
                assert ("Idempotency-Key" in headers) == (method == "post"), (method, path)
            else:
                assert "Idempotency-Key" not in headers, (method, path)
    assert secured > 0  # every service has authenticated operations
    if service == "payments":
        # The Stripe webhook authenticates by signature, not by a bearer token.
        webhook = doc["paths"]["/v1/stripe/webhook"]["post"]  # type: ignore[index]
        assert "security" not in webhook


def test_contracts_openapi_has_every_path_of_the_design() -> None:
    paths = set(document("contracts", "openapi")["paths"])  # type: ignore[arg-type]
    expected = {
        "/v1/marketplaces/{marketplace_id}/settings",
        "/v1/jobs",
        "/v1/jobs/{job_id}/proposals",
        "/v1/contracts",
        "/v1/contracts/{contract_id}",
        "/v1/contracts/{contract_id}/accept",
        "/v1/contracts/{contract_id}/decline",
        "/v1/contracts/{contract_id}/withdraw",
        "/v1/contracts/{contract_id}/end",
        "/v1/contracts/{contract_id}/messages",
        "/v1/contracts/{contract_id}/milestones",
        "/v1/milestones/{milestone_id}",
        "/v1/milestones/{milestone_id}/history",
        "/v1/disputes",
        "/v1/disputes/{dispute_id}/resolve",
        *(
            f"/v1/milestones/{{milestone_id}}/{c}"
            for c in (
                "send-for-approval",
                "approve",
                "request-changes",
                "pay",
                "complete",
                "release",
                "dispute",
                "request-refund",
                "refund",
            )
        ),
    }
    assert expected <= paths, sorted(expected - paths)


#: The AsyncAPI 3.0.0 JSON Schema, vendored from the npm package @asyncapi/specs 6.11.1
#: (schemas/3.0.0-without-$id.json; tests/asyncapi/README.md).
ASYNCAPI_SCHEMA = json.loads(
    (Path(__file__).parent / "asyncapi" / "asyncapi-3.0.0.schema.json").read_text()
)
CONSUMES = {
    "contracts": {topics.PAYMENTS},
    "payments": {topics.CONTRACTS},
    "notifications": {topics.CONTRACTS, topics.PAYMENTS, topics.MARKETPLACES},
}


def asyncapi_errors(doc: object) -> list[str]:
    validator = jsonschema.Draft7Validator(ASYNCAPI_SCHEMA)
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(doc)]


def resolved(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the document's components, so its $refs resolve."""
    return schema | {"components": doc["components"]}


@pytest.mark.parametrize("service", SERVICES)
def test_asyncapi_is_valid_asyncapi_3(service: str) -> None:
    doc = document(service, "asyncapi")
    assert doc["asyncapi"] == "3.0.0"
    assert asyncapi_errors(doc) == []
    broken = json.loads(json.dumps(doc))
    next(iter(broken["operations"].values()))["action"] = "publish"  # AsyncAPI 2's word
    assert asyncapi_errors(broken), "the validator catches what AsyncAPI 3 refuses"


@pytest.mark.parametrize("service", SERVICES)
def test_asyncapi_has_one_message_per_event_type_with_its_cloudevents_headers(
    service: str,
) -> None:
    doc: dict[str, Any] = document(service, "asyncapi")
    messages = doc["components"]["messages"]
    on_topics = PUBLISHES[service] | CONSUMES[service]
    expected = {cls.__name__: cls for t in on_topics for cls in events_on(t)}
    assert set(messages) == set(expected)
    for name, cls in expected.items():
        message = messages[name]
        assert message["title"] == cls.event_type
        assert message["payload"] == {"$ref": f"#/components/schemas/{name}"}, "no anyOf"
        assert message["headers"]["properties"]["ce_type"]["const"] == cls.event_type
        assert message["correlationId"]["location"] == "$message.header#/ce_causationid"
        # A real event, as the relay publishes it, fits its message: headers and payload.
        record = to_kafka(
            sample(cls), source=message["headers"]["properties"]["ce_source"]["const"]
        )
        headers = {k: v.decode() for k, v in record.headers}
        headers |= {
            "ce_causationid": "evt-1",
            "ce_traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        }
        jsonschema.validate(headers, message["headers"])
        payload_schema = resolved(doc, {"$ref": message["payload"]["$ref"]})
        jsonschema.validate(json.loads(record.value), payload_schema)
        other = next((c for c in expected.values() if c.topic == cls.topic and c is not cls), None)
        if other is not None:  # ce_type tells the messages of a topic apart
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(headers, messages[other.__name__]["headers"])


@pytest.mark.parametrize("service", SERVICES)
def test_asyncapi_operations_servers_and_consumed_channels(service: str) -> None:
    doc: dict[str, Any] = document(service, "asyncapi")
    channels = doc["channels"]
    by_address = {c["address"]: name for name, c in channels.items()}
    sends = {o["channel"]["$ref"] for o in doc["operations"].values() if o["action"] == "send"}
    assert sends == {f"#/channels/{by_address[t]}" for t in PUBLISHES[service]}
    receives = [o for o in doc["operations"].values() if o["action"] == "receive"]
    assert {o["channel"]["$ref"] for o in receives} == {
        f"#/channels/{by_address[t]}" for t in CONSUMES[service]
    }
    for operation in receives:
        assert operation["bindings"]["kafka"]["groupId"] == {"type": "string", "enum": [service]}
        assert operation["messages"], "a consumed channel documents what is handled"
        for ref in operation["messages"]:
            name = ref["$ref"].rsplit("/", 1)[1]
            payload = doc["components"]["schemas"][name]
            assert payload["type"] == "object", "never {'type': 'null'}"
    production = doc["servers"]["production"]
    assert production["protocol"] == "kafka-secure"
    (scheme,) = production["security"]
    assert scheme == {"$ref": "#/components/securitySchemes/scramSha512"}
    assert doc["components"]["securitySchemes"]["scramSha512"]["type"] == "scramSha512"
    if service == "contracts":
        binding = channels[by_address[topics.MARKETPLACES]]["bindings"]["kafka"]
        assert binding["topicConfiguration"] == {"cleanup.policy": ["compact"]}
