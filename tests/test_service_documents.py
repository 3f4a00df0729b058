"""Each service's console script prints a valid OpenAPI and AsyncAPI document — what front
ends and subscribing services read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cairn_schemas import topics
from openapi_spec_validator import validate

SERVICES = ["contracts", "payments", "notifications"]
PUBLISHES = {
    "contracts": {topics.CONTRACTS, topics.MARKETPLACES},
    "payments": {topics.PAYMENTS},
    "notifications": {topics.NOTIFICATIONS},
}


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
    assert {"/healthz", "/readyz", "/metrics"} <= set(paths)
    assert all(p.startswith("/v1/") for p in paths if p not in ("/healthz", "/readyz", "/metrics"))


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
