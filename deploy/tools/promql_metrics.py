"""The metric names each PromQL expression reads, offline.

    python deploy/tools/promql_metrics.py EXPRESSIONS.json

Reads a JSON list of PromQL expressions and prints a JSON object
``{"metrics": {expr: [name, ...]}, "errors": {expr: message}}``: every expression is
parsed by promql-parser (the pinned tool environment of deploy/tests, not the project's),
so one that Prometheus would refuse is an error, and every metric it selects is listed.
A selector without a metric name (``{__name__=~"..."}``) is an error too: the check that
names exist could not see what it reads. Grafana's ``$__rate_interval`` and friends are
replaced by a duration first, as Grafana does before it sends the query.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import promql_parser

# Grafana's interval variables, as Grafana fills them in before querying.
_GRAFANA_INTERVALS = re.compile(r"\$__(rate_interval|interval|range)\b")


def metrics_of(expr: str) -> list[str]:
    """The metric names ``expr`` selects (ValueError if it does not parse)."""
    ast = promql_parser.parse(_GRAFANA_INTERVALS.sub("5m", expr))
    names: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if not node.name:
                raise ValueError(f"a selector without a metric name: {node}")
            names.append(str(node.name))

    promql_parser.walk(ast, visit)
    return sorted(set(names))


def main(argv: list[str]) -> int:
    expressions = json.loads(Path(argv[0]).read_text())
    out: dict[str, dict[str, Any]] = {"metrics": {}, "errors": {}}
    for expr in expressions:
        try:
            out["metrics"][expr] = metrics_of(expr)
        except (ValueError, TypeError) as exc:
            out["errors"][expr] = str(exc)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
