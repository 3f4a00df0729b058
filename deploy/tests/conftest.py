"""Fixtures of the deployment checks: the overlays, rendered once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The helpers beside this file, and deploy/ itself (gen_config_reference).
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy_support import OVERLAYS, Rendered, render


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    """Every overlay and the base, rendered once per session."""
    folder = tmp_path_factory.mktemp("rendered")
    targets = {name: f"overlays/{name}" for name in OVERLAYS} | {"base": "base"}
    return {name: render(target, folder / f"{name}.yaml") for name, target in targets.items()}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, Rendered]) -> Rendered:
    """Each overlay in turn."""
    return rendered[request.param]
