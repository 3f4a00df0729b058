"""The alerts and the dashboard read metrics that exist.

Every PromQL expression of the PrometheusRule and of the Grafana dashboard is parsed
(promql-parser, pinned, in a throw-away environment) and every metric it selects must be
exported by the code — declared with prometheus_client in services/*/src or
shared/chassis/src *and* updated somewhere there (a gauge nothing sets is a blind alert) —
or be one of Kafka Exporter's own metrics, which docs/operations.md lists. The alerts
cover what issue 19 asked for, each names a runbook section that exists, and the
dashboard is a ConfigMap Grafana's sidecar picks up.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from deploy_support import DEPLOY, ROOT, Rendered, run_tool

PROMQL_PARSER = "promql-parser==0.11.0"
TOOL = str(DEPLOY / "tools" / "promql_metrics.py")
OPERATIONS = ROOT / "docs" / "operations.md"
CODE = [*sorted((ROOT / "services").glob("*/src")), ROOT / "shared" / "chassis" / "src"]
METRIC_CLASSES = {"Counter", "Gauge", "Histogram", "Summary"}
UPDATES = {"labels", "inc", "dec", "set", "observe", "time"}
# What each alert is for (issue 19, item 5), by alert name.
REQUIRED_ALERTS = {
    "CairnConsumerLagHigh",  # consumer lag
    "CairnDeadLettersWaiting",  # dead letters waiting
    "CairnEventDeadLettered",
    "CairnOutboxNotDraining",  # the age of the oldest unpublished outbox row
    "CairnOutboxPublishFailing",
    "CairnEscrowsReconcilingTooLong",  # escrows reconciling too long
    "CairnEmailsFailed",  # failed emails
    "CairnStripeWebhookSignatureFailures",  # webhook signature failures
}


def _series(kind: str, name: str) -> list[str]:
    """The series prometheus_client exposes for one metric."""
    if kind == "Counter":
        base = name.removesuffix("_total")
        return [f"{base}_total", f"{base}_created"]
    if kind == "Histogram":
        return [f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"]
    if kind == "Summary":
        return [name, f"{name}_sum", f"{name}_count", f"{name}_created"]
    return [name]


@cache
def exported_series() -> dict[str, str]:
    """Series name → where the code declares it, for every metric the services update.

    A metric counts when it is declared (``NAME = Counter("cairn_…", …)``) and updated
    (``NAME.inc/set/labels/…(``) at module level or in a function that some code of the
    services calls or a decorator registers (a route, a middleware): a gauge only a test
    helper sets exports nothing but its zero."""
    trees = {p: ast.parse(p.read_text()) for f in CODE for p in sorted(f.rglob("*.py"))}
    declared: dict[str, tuple[str, str, str]] = {}  # variable → (kind, name, where)
    updaters: dict[str, set[str | None]] = {}  # variable → enclosing functions
    referenced: Counter[str] = Counter()  # every name the code mentions
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id in METRIC_CLASSES
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value.args[0], ast.Constant)
            ):
                where = f"{path.relative_to(ROOT)} ({node.targets[0].id})"
                kind, name = node.value.func.id, str(node.value.args[0].value)
                declared[node.targets[0].id] = (kind, name, where)
            if isinstance(node, ast.Name):
                referenced[node.id] += 1
            elif isinstance(node, ast.Attribute):
                referenced[node.attr] += 1

        def visit(node: ast.AST, function: str | None) -> None:
            for child in ast.iter_child_nodes(node):
                inner = function
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    inner = child.name
                    if child.decorator_list:  # the framework calls it
                        referenced[child.name] += 1
                if (
                    isinstance(child, ast.Call)
                    and isinstance(child.func, ast.Attribute)
                    and child.func.attr in UPDATES
                    and isinstance(child.func.value, ast.Name)
                ):
                    updaters.setdefault(child.func.value.id, set()).add(function)
                visit(child, inner)

        visit(tree, None)
    series: dict[str, str] = {}
    for var, (kind, name, where) in declared.items():
        # A function is called if its name appears anywhere besides its own definition
        # (its def is an ast.FunctionDef, which is neither a Name nor an Attribute).
        if any(f is None or referenced[f] > 0 for f in updaters.get(var, set())):
            series |= dict.fromkeys(_series(kind, name), where)
    return series


def kafka_exporter_metrics() -> set[str]:
    """The Kafka Exporter metrics docs/operations.md lists (Alerts and dashboard)."""
    text = OPERATIONS.read_text()
    section = text.split("<!-- kafka-exporter-metrics -->")[1]
    return set(re.findall(r"`(kafka_[a-z_]+)`", section))


def rules(r: Rendered) -> list[dict[str, Any]]:
    (rule,) = r.of_kind("PrometheusRule")
    return [x for group in rule["spec"]["groups"] for x in group["rules"]]


def dashboard(r: Rendered) -> dict[str, Any]:
    cm = r.get("ConfigMap", "cairn-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = cm["data"].values()
    return dict(json.loads(text))


def dashboard_expressions(board: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            # label_values(metric, label) is Grafana's, not PromQL: check the metric.
            m = re.fullmatch(r"label_values\((\w+), *\w+\)", var["definition"])
            assert m, var["definition"]
            exprs.append(m[1])
    return exprs


def metrics_read(exprs: list[str], tmp_path: Path) -> dict[str, list[str]]:
    """expression → the metrics it reads; fails on an expression that does not parse."""
    source = tmp_path / "expressions.json"
    source.write_text(json.dumps(exprs))
    result = run_tool(PROMQL_PARSER, ["python", TOOL, str(source)])
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert not out["errors"], out["errors"]
    return dict(out["metrics"])


def unknown_metrics(read: dict[str, list[str]]) -> list[str]:
    known = set(exported_series()) | kafka_exporter_metrics()
    return [
        f"{name} (in {expr!r})"
        for expr, names in read.items()
        for name in names
        if name not in known
    ]


def test_the_code_reading_finds_the_metrics() -> None:
    series = exported_series()
    for name in (
        "cairn_http_requests_total",
        "cairn_http_request_seconds_bucket",
        "cairn_events_consumed_total",
        "cairn_payments_escrows_reconciling",
        "cairn_notifications_emails_total",
    ):
        assert name in series, name
    # Issue 19: what the alerts needed and the services now keep.
    for name in (
        "cairn_outbox_pending",
        "cairn_outbox_oldest_unpublished_age_seconds",
        "cairn_payments_oldest_reconciling_age_seconds",
        "cairn_payments_webhooks_refused_total",
    ):
        assert name in series, name
    assert {"kafka_consumergroup_lag", "kafka_topic_partition_current_offset"} <= (
        kafka_exporter_metrics()
    )


def test_every_metric_an_alert_or_panel_reads_is_exported(
    overlay: Rendered, tmp_path: Path
) -> None:
    exprs = [r["expr"] for r in rules(overlay)] + dashboard_expressions(dashboard(overlay))
    read = metrics_read(exprs, tmp_path)
    assert len(read) == len(set(exprs))
    assert not unknown_metrics(read)


def test_the_metric_check_catches_a_metric_nobody_exports(tmp_path: Path) -> None:
    """Guards the guard: a misspelt metric, a Kafka Exporter metric the docs do not list
    and an expression Prometheus would refuse all fail."""
    read = metrics_read(["sum(cairn_http_request_total)", "kafka_brokers"], tmp_path)
    assert unknown_metrics(read) == [
        "cairn_http_request_total (in 'sum(cairn_http_request_total)')",
        "kafka_brokers (in 'kafka_brokers')",
    ]
    with pytest.raises(AssertionError, match="unclosed left parenthesis"):
        metrics_read(["sum(rate(cairn_http_requests_total[5m])"], tmp_path)


def test_alerts_cover_what_an_operator_must_act_on(overlay: Rendered) -> None:
    alerts = {r["alert"]: r for r in rules(overlay)}
    assert set(alerts) >= REQUIRED_ALERTS
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("info", "warning", "critical"), name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operations.md", name
        assert anchor in headings, f"{name}: no section #{anchor} in docs/operations.md"


def test_the_dashboard_is_a_grafana_dashboard(overlay: Rendered) -> None:
    board = dashboard(overlay)
    assert board["uid"] == "cairn-overview"
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len(panels) >= 12
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for p in panels:
        assert p["targets"], p["title"]
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
    assert {v["name"] for v in board["templating"]["list"]} == {
        "datasource",
        "namespace",
        "kafka_cluster",
    }
