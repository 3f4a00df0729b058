"""The overlays render, and what they render is what an operator was promised (issue 7):
each service's resources, locked-down pods, probes, and secrets only by reference."""

from __future__ import annotations

from typing import Any

import pytest
from deploy_support import OVERLAYS, SERVICES, Rendered

CLUSTER_SCOPED = {"Namespace"}


def pod_specs(r: Rendered) -> list[tuple[str, dict[str, Any]]]:
    """(owner, pod spec) of every Deployment and Job."""
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in r.docs
        if d["kind"] in ("Deployment", "Job")
    ]


def test_base_and_every_overlay_render(rendered: dict[str, Rendered]) -> None:
    assert set(rendered) == {"base", *OVERLAYS}
    for r in rendered.values():
        assert r.docs, f"{r.name} rendered nothing"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_its_resources(overlay: Rendered, service: str) -> None:
    name = f"cairn-{service}"
    api = overlay.get("Deployment", f"{name}-api")
    worker = overlay.get("Deployment", f"{name}-worker")
    job = overlay.get("Job", f"{name}-migrate")
    overlay.get("Service", f"{name}-api")
    overlay.get("ServiceAccount", name)
    overlay.get("ConfigMap", f"{name}-config")
    overlay.get("ServiceMonitor", name)
    overlay.get("KafkaUser", name)
    for doc in (api, worker, job):
        assert doc["spec"]["template"]["spec"]["serviceAccountName"] == name
    hpa = overlay.get("HorizontalPodAutoscaler", f"{name}-api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{name}-api"
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    scaled = overlay.get("ScaledObject", f"{name}-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == f"{name}-worker"
    assert {t["type"] for t in scaled["spec"]["triggers"]} == {"kafka"}
    pdbs = {p["metadata"]["name"] for p in overlay.of_kind("PodDisruptionBudget")}
    assert {f"{name}-api", f"{name}-worker"} <= pdbs
    policies = [
        p for p in overlay.of_kind("NetworkPolicy") if name in str(p["spec"]["podSelector"])
    ]
    assert policies, f"no NetworkPolicy selects {name}'s pods"


@pytest.mark.parametrize("service", SERVICES)
def test_one_image_runs_each_role_by_its_command(overlay: Rendered, service: str) -> None:
    name = f"cairn-{service}"
    roles = {"api": ("Deployment", f"{name}-api"), "worker": ("Deployment", f"{name}-worker")}
    roles["migrate"] = ("Job", f"{name}-migrate")
    images = set()
    for role, (kind, resource) in roles.items():
        (container,) = overlay.get(kind, resource)["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [role]
        images.add(container["image"])
    assert len(images) == 1, images
    image = images.pop()
    assert image.startswith(name), image
    assert ":" in image, f"{image} has no tag"


def test_everything_lands_in_the_overlay_namespace(overlay: Rendered) -> None:
    (namespace,) = overlay.of_kind("Namespace")
    expected = namespace["metadata"]["name"]
    for doc in overlay.docs:
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") == expected, doc["metadata"]["name"]


def test_pods_run_locked_down(overlay: Rendered) -> None:
    for owner, spec in pod_specs(overlay):
        assert spec["automountServiceAccountToken"] is False, owner
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, owner
        assert pod["runAsUser"] >= 10000, owner
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, owner
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, owner
            assert sc["readOnlyRootFilesystem"] is True, owner
            assert sc["capabilities"]["drop"] == ["ALL"], owner
            assert "add" not in sc["capabilities"], owner
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{owner} {kind}"
            # A read-only root needs a writable /tmp for the odd library that wants one.
            assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}, owner


def test_apis_are_probed_on_healthz_and_readyz(overlay: Rendered) -> None:
    for service in SERVICES:
        deployment = overlay.get("Deployment", f"cairn-{service}-api")
        (c,) = deployment["spec"]["template"]["spec"]["containers"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        # /readyz gives each check up to 6 s; the probe must wait longer than that.
        assert c["readinessProbe"]["timeoutSeconds"] > 6


def test_deployments_spread_over_zones_and_nodes(overlay: Rendered) -> None:
    for d in overlay.of_kind("Deployment"):
        keys = {
            t["topologyKey"] for t in d["spec"]["template"]["spec"]["topologySpreadConstraints"]
        }
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


SECRET_SUFFIXES = ("_DATABASE_URL", "_SECRET", "_PASSWORD", "_API_KEY", "_PUBLIC_KEY")


def test_secrets_are_referenced_never_shipped(overlay: Rendered) -> None:
    assert not overlay.of_kind("Secret"), "the manifests must never carry Secret values"
    for owner, spec in pod_specs(overlay):
        for c in spec["containers"]:
            for env in c.get("env", []):
                if env["name"].endswith(SECRET_SUFFIXES):
                    assert "secretKeyRef" in env.get("valueFrom", {}), f"{owner}: {env['name']}"
    for cm in overlay.of_kind("ConfigMap"):
        for key in cm["data"]:
            assert not key.endswith(SECRET_SUFFIXES), f"{cm['metadata']['name']}: {key}"


def test_dev_and_production_differ_where_they_should(rendered: dict[str, Rendered]) -> None:
    dev, prod = rendered["dev"], rendered["production"]
    assert {t["spec"]["replicas"] for t in prod.of_kind("KafkaTopic")} == {3}
    assert {t["spec"]["replicas"] for t in dev.of_kind("KafkaTopic")} == {1}
    assert {h["spec"]["minReplicas"] for h in prod.of_kind("HorizontalPodAutoscaler")} == {3}
    assert {s["spec"]["minReplicaCount"] for s in prod.of_kind("ScaledObject")} == {2}


def test_autoscaled_deployments_leave_the_replica_count_to_their_scaler(
    overlay: Rendered,
) -> None:
    """A replica count in the manifest would reset the scaler's choice on every apply."""
    for d in overlay.of_kind("Deployment"):
        assert "replicas" not in d["spec"], d["metadata"]["name"]


def test_stripe_is_reachable_over_ipv4_and_ipv6_but_not_private_ranges(overlay: Rendered) -> None:
    """Stripe publishes no address range: any public address on 443, in both families, so
    a dual-stack or IPv6-only cluster reaches it too; private ranges stay closed."""
    policy = overlay.get("NetworkPolicy", "cairn-payments-stripe")
    (rule,) = policy["spec"]["egress"]
    assert [(p["protocol"], p["port"]) for p in rule["ports"]] == [("TCP", 443)]
    blocks = {b["ipBlock"]["cidr"]: set(b["ipBlock"]["except"]) for b in rule["to"]}
    assert set(blocks) == {"0.0.0.0/0", "::/0"}
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= blocks[
        "0.0.0.0/0"
    ]
    assert {"fc00::/7", "fe80::/10"} <= blocks["::/0"]


def kafka_clusters(r: Rendered) -> set[str]:
    """Every Kafka cluster the overlay names: the Strimzi resources' ``strimzi.io/cluster``
    label, the bootstrap address and the NetworkPolicies' broker selectors."""
    found = {
        d["metadata"]["labels"]["strimzi.io/cluster"]
        for d in r.docs
        if str(d["apiVersion"]).startswith("kafka.strimzi.io/")
    }
    bootstrap = r.get("ConfigMap", "cairn-shared-config")["data"]["CAIRN_KAFKA_BOOTSTRAP_SERVERS"]
    for address in bootstrap.split(","):
        host = address.rsplit(":", 1)[0]
        service, _, _ = host.partition(".")
        assert service.endswith("-kafka-bootstrap"), address
        found.add(service.removesuffix("-kafka-bootstrap"))
    for policy in r.of_kind("NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                if "strimzi.io/cluster" in labels:
                    found.add(labels["strimzi.io/cluster"])
    return found


def test_dev_and_production_never_share_a_kafka_cluster(rendered: dict[str, Rendered]) -> None:
    """Both use the same topic names and consumer groups, so they must not use the same
    cluster: each overlay names exactly one, and not the other's."""
    dev, prod = kafka_clusters(rendered["dev"]), kafka_clusters(rendered["production"])
    assert dev == {"cairn-dev-kafka"}
    assert prod == {"cairn-kafka"}
