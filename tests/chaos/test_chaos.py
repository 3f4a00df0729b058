"""A small chaos run as part of ``make test``: 50 lifecycles (every kind at least once)
under a fault a second, zero violations. ``make chaos`` runs bigger ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.harness import run

pytestmark = pytest.mark.e2e


# A fault every 2 s on average (``make chaos`` defaults to one a second): at one a second a
# 2-core box spends most of a run this small rejoining consumer groups after SIGKILLs
# (DESIGN §9), and lifecycles outwait the harness's 240 s patience while no money, event or
# email is lost (docs/reliability.md). A few minutes on a quiet machine; the timeout is the
# headroom for a loaded CI box.
@pytest.mark.timeout(1200)
async def test_lifecycles_under_faults_lose_nothing_and_pay_nothing_twice(
    tmp_path: Path,
) -> None:
    report = await run(50, seed=7, concurrency=12, workdir=tmp_path, fault_interval_s=2.0)
    print(report.render())
    assert report.faults, "the run must actually have injected faults"
    assert report.violations == 0, report.render()
