"""checkov (the policy check) passes on the rendered overlays and the Dockerfiles, and
every check it is told to skip carries its reason."""

from __future__ import annotations

import re

from deploy_support import CHECKOV, ROOT, SERVICES, Rendered, run_tool

DOCKERFILES = [f"services/{s}/Dockerfile" for s in SERVICES]
SKIP_ANNOTATION = re.compile(r"^checkov\.io/skip\d+$")


def test_checkov_passes_on_manifests_and_dockerfiles(rendered: dict[str, Rendered]) -> None:
    files = [str(rendered[name].path) for name in ("dev", "production")] + DOCKERFILES
    args = ["checkov", "--quiet", "--compact", "--skip-download"]
    args += ["--framework", "kubernetes", "dockerfile"]
    for f in files:
        args += ["--file", f]
    result = run_tool(CHECKOV, args, timeout=600)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    # Both frameworks ran and found nothing (quiet mode prints only the summaries).
    summaries = re.findall(r"Passed checks: (\d+), Failed checks: (\d+)", result.stdout)
    assert len(summaries) == 2, result.stdout
    assert all(int(passed) > 100 and failed == "0" for passed, failed in summaries)


def test_every_skipped_check_says_why(rendered: dict[str, Rendered]) -> None:
    for r in rendered.values():
        for doc in r.docs:
            for key, value in (doc["metadata"].get("annotations") or {}).items():
                if SKIP_ANNOTATION.match(key):
                    check, _, reason = value.partition("=")
                    assert re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+", check), value
                    assert len(reason.split()) >= 6, f"{doc['metadata']['name']}: {value}"
    for dockerfile in DOCKERFILES:
        for line in (ROOT / dockerfile).read_text().splitlines():
            if "checkov:skip=" in line:
                check, _, reason = line.split("checkov:skip=", 1)[1].partition(":")
                assert re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+", check), line
                assert len(reason.split()) >= 6, f"{dockerfile}: {line}"
