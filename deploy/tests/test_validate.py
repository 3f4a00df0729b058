"""Every rendered resource is valid: the built-in kinds against the Kubernetes OpenAPI
schemas (kubernetes-validate --strict), the custom resources (Strimzi, KEDA, Prometheus
Operator) against the CRDs kept in deploy/schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import CEL_PYTHON, DEPLOY, KUBERNETES_VALIDATE, Rendered, run_tool

# The newest Kubernetes the tool knows, and the oldest we promise to run on.
KUBERNETES_VERSIONS = ("1.37.0", "1.30.0")
CUSTOM_GROUPS = ("kafka.strimzi.io", "keda.sh", "monitoring.coreos.com")
VALIDATOR = str(DEPLOY / "tools" / "validate_custom_resources.py")
CRD_TOOLS = (KUBERNETES_VALIDATE, CEL_PYTHON)
# The release each kept CRD follows (deploy/schemas/README.md names the same).
RELEASES = {
    "kafka.strimzi.io_kafkatopics.yaml": "Strimzi 1.2.0",
    "kafka.strimzi.io_kafkausers.yaml": "Strimzi 1.2.0",
    "keda.sh_scaledobjects.yaml": "KEDA 2.20.2",
    "keda.sh_triggerauthentications.yaml": "KEDA 2.20.2",
    "monitoring.coreos.com_servicemonitors.yaml": "Prometheus Operator 0.93.0",
    "monitoring.coreos.com_prometheusrules.yaml": "Prometheus Operator 0.93.0",
}


def is_custom(doc: dict[str, Any]) -> bool:
    return str(doc["apiVersion"]).split("/")[0] in CUSTOM_GROUPS


def split(docs: list[dict[str, Any]], folder: Path) -> list[str]:
    """One file per resource, so a failure names the resource."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, doc in enumerate(docs):
        path = folder / f"{i:03d}-{doc['kind']}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_resources_pass_kubernetes_validate_strict(
    overlay: Rendered, version: str, tmp_path: Path
) -> None:
    core = [d for d in overlay.docs if not is_custom(d)]
    assert len(core) > 30
    result = run_tool(
        KUBERNETES_VALIDATE,
        ["kubernetes-validate", "--strict", "--quiet", "-k", version, *split(core, tmp_path)],
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kept_crds_are_valid_crds() -> None:
    files = sorted(str(p) for p in (DEPLOY / "schemas").glob("*.yaml"))
    assert {Path(f).name for f in files} == set(RELEASES)
    readme = (DEPLOY / "schemas" / "README.md").read_text()
    for name, release in RELEASES.items():
        assert release in (DEPLOY / "schemas" / name).read_text().splitlines()[0], name
        assert f"`{name}`" in readme
        assert release in readme
    result = run_tool(KUBERNETES_VALIDATE, ["kubernetes-validate", "--strict", "--quiet", *files])
    assert result.returncode == 0, result.stdout + result.stderr


def test_custom_resources_match_their_crds(overlay: Rendered) -> None:
    kinds = {d["kind"] for d in overlay.docs if is_custom(d)}
    assert kinds == {
        "KafkaTopic",
        "KafkaUser",
        "ScaledObject",
        "TriggerAuthentication",
        "ServiceMonitor",
        "PrometheusRule",
    }
    result = run_tool(CRD_TOOLS, ["python", VALIDATOR, str(overlay.path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 problems" in result.stdout


def test_the_crd_check_rejects_what_an_api_server_would(tmp_path: Path) -> None:
    """Guards the guard: a typo, a wrong type, an unknown enum value, a broken CEL rule,
    a version Strimzi removed (v1beta2, gone since 1.0.0) and an unknown version each
    fail the check."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        """\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: typo}
spec:
  scaleTargetRef: {name: w}
  maxReplicas: 3
  triggers: [{type: kafka, metadata: {lagThreshold: 5}}]
---
apiVersion: kafka.strimzi.io/v1
kind: KafkaUser
metadata: {name: enum}
spec:
  authorization:
    type: simple
    acls: [{resource: {type: topic, name: t}, operations: [Reed]}]
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: cel}
spec:
  scaleTargetRef: {name: w}
  minReplicaCount: 5
  maxReplicaCount: 3
  triggers: [{type: kafka, metadata: {lagThreshold: "5"}}]
---
apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaTopic
metadata: {name: removed}
spec: {partitions: 1}
---
apiVersion: kafka.strimzi.io/v9
kind: KafkaTopic
metadata: {name: version}
spec: {partitions: 1}
"""
    )
    result = run_tool(CRD_TOOLS, ["python", VALIDATOR, str(broken)])
    assert result.returncode == 1
    for expected in (
        "ScaledObject/typo (keda.sh/v1alpha1): spec: Additional properties are not allowed",
        "('maxReplicas' was unexpected)",
        "5 is not of type 'string'",
        "'Reed'",
        "ScaledObject/cel (keda.sh/v1alpha1): spec: minReplicaCount must be less than or equal",
        "KafkaTopic/removed (kafka.strimzi.io/v1beta2): no CRD",
        "KafkaTopic/version (kafka.strimzi.io/v9): no CRD",
    ):
        assert expected in result.stdout, result.stdout
    assert "5 custom resources checked, 6 problems" in result.stdout, result.stdout


def test_the_subscriber_example_is_valid_and_grants_only_reading(tmp_path: Path) -> None:
    """deploy/examples/subscriber-kafkauser.yaml (docs/subscribers.md): valid against the
    current CRD, and an internal team may read the event topics and use its own group,
    nothing more."""
    example = DEPLOY / "examples" / "subscriber-kafkauser.yaml"
    result = run_tool(CRD_TOOLS, ["python", VALIDATOR, str(example)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 custom resources checked, 0 problems" in result.stdout
    (user,) = [d for d in yaml.safe_load_all(example.read_text()) if d]
    name = user["metadata"]["name"]
    acls = user["spec"]["authorization"]["acls"]
    assert all(a["resource"]["patternType"] == "literal" for a in acls), "no wildcards"
    assert all(a.get("type", "allow") == "allow" for a in acls)
    topics = {a["resource"]["name"] for a in acls if a["resource"]["type"] == "topic"}
    groups = {a["resource"]["name"] for a in acls if a["resource"]["type"] == "group"}
    assert topics == {"cairn.contracts.v1", "cairn.payments.v1", "cairn.notifications.v1"}
    assert groups == {name}
    assert name not in ("contracts", "payments", "notifications"), "never Cairn's own group"
    assert {op for a in acls for op in a["operations"]} == {"Read", "Describe"}
    assert {a["resource"]["type"] for a in acls} == {"topic", "group"}
