"""Every rendered resource is valid: the built-in kinds against the Kubernetes OpenAPI
schemas (kubernetes-validate --strict), the custom resources (Strimzi, KEDA, Prometheus
Operator) against the CRDs kept in deploy/schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import DEPLOY, KUBERNETES_VALIDATE, Rendered, run_tool

# The newest Kubernetes the tool knows, and the oldest we promise to run on.
KUBERNETES_VERSIONS = ("1.37.0", "1.30.0")
CUSTOM_GROUPS = ("kafka.strimzi.io", "keda.sh", "monitoring.coreos.com")
VALIDATOR = str(DEPLOY / "tools" / "validate_custom_resources.py")


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
    assert len(files) == 5
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
    }
    result = run_tool(KUBERNETES_VALIDATE, ["python", VALIDATOR, str(overlay.path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 problems" in result.stdout


def test_the_crd_check_rejects_what_an_api_server_would(tmp_path: Path) -> None:
    """Guards the guard: a typo, a wrong type, an unknown enum value and an unknown
    version each fail the check."""
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
apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaUser
metadata: {name: enum}
spec:
  authorization:
    type: simple
    acls: [{resource: {type: topic, name: t}, operations: [Reed]}]
---
apiVersion: kafka.strimzi.io/v9
kind: KafkaTopic
metadata: {name: version}
spec: {partitions: 1}
"""
    )
    result = run_tool(KUBERNETES_VALIDATE, ["python", VALIDATOR, str(broken)])
    assert result.returncode == 1
    for expected in ("'maxReplicas' was unexpected", "5 is not of type 'string'", "'Reed'", "v9"):
        assert expected in result.stdout, result.stdout
