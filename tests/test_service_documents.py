"""Each service's console script prints a valid OpenAPI and AsyncAPI document — what front
ends and subscribing services read."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from cairn_chassis.errors import Problem
from cairn_schemas import topics
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


@pytest.mark.parametrize("service", SERVICES)
def test_asyncapi_documents_every_published_topic_with_payloads(service: str) -> None:
    doc = document(service, "asyncapi")
    assert doc["asyncapi"] == "3.0.0"
    channels = doc["channels"]
    assert isinstance(channels, dict)
    addresses = {c["address"] for c in channels.values()}
    assert PUBLISHES[service] <= addresses
    schemas = doc["components"]["schemas"]  # type: ignore[index]
    if service == "contracts":
        assert {"MilestoneFundingRequested", "MarketplaceSettingsChanged"} <= set(schemas)
