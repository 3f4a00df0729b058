#!/usr/bin/env bash
# The deployment checks (issue 7), the same as `pytest deploy/tests`:
#   - kubectl kustomize renders the base and every overlay (kubectl from PyPI, pinned);
#   - kubernetes-validate --strict passes on the built-in resources (Kubernetes 1.30, 1.37);
#   - the Strimzi, KEDA and Prometheus Operator resources match the current CRDs kept in
#     deploy/schemas (structure and CEL rules; removed API versions fail);
#   - every metric an alert or dashboard panel reads is exported by the code;
#   - checkov passes on the rendered manifests and the Dockerfiles (skips carry reasons);
#   - every topic and setting the code uses has its KafkaTopic, ACL and ConfigMap/Secret;
#   - the Dockerfiles' own install steps, replayed, give a layout that runs each role;
#   - docs/operations.md's configuration reference matches the settings classes.
# The tools run in throw-away environments (uv run --with), never in the project's lock.
# Usage: deploy/check.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
UV="$(command -v uv 2>/dev/null || echo "$HOME/.local/bin/uv")"
exec "$UV" run --no-sync pytest deploy/tests -p no:cacheprovider "$@"
