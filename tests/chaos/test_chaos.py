"""A small chaos run as part of ``make test``: 50 lifecycles under faults, zero violations."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.harness import run

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)  # about 4 minutes here; the suite's 300 s default is for one test
async def test_fifty_lifecycles_under_faults_lose_nothing_and_pay_nothing_twice(
    tmp_path: Path,
) -> None:
    report = await run(50, seed=7, concurrency=12, workdir=tmp_path)
    print(report.render())
    assert report.faults, "the run must actually have injected faults"
    assert report.violations == 0, report.render()
