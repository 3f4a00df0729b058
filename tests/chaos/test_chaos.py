"""A small chaos run as part of ``make test``: 50 lifecycles (every kind at least once)
under a fault a second, zero violations. ``make chaos`` runs bigger ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.harness import run

pytestmark = pytest.mark.e2e


# About 2 minutes on a quiet 2-core box since the Stripe stand-in stopped pickling its
# store per request; the headroom is for a loaded CI machine, the suite's 300 s default
# being meant for one ordinary test.
@pytest.mark.timeout(1200)
async def test_lifecycles_under_faults_lose_nothing_and_pay_nothing_twice(
    tmp_path: Path,
) -> None:
    report = await run(50, seed=7, concurrency=12, workdir=tmp_path)
    print(report.render())
    assert report.faults, "the run must actually have injected faults"
    assert report.violations == 0, report.render()
