"""docs/errors.md lists every problem code the APIs can answer, with its HTTP status:
front ends switch on these codes, so a code added (or dropped) in the code without the
reference is a broken promise to them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from cairn_chassis.errors import _STATUS_CODES

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "errors.md"
SOURCES = [
    ROOT / "services" / "contracts" / "src",
    ROOT / "services" / "payments" / "src",
    ROOT / "services" / "notifications" / "src",
    ROOT / "shared" / "chassis" / "src",
]


def _text(node: ast.expr) -> str | None:
    """A string literal; an f-string with each placeholder as ``<code>`` (as documented)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "<code>" for v in node.values)
    return None


def _status(node: ast.expr | None, default: int) -> int | None:
    if node is None:
        return default
    return node.value if isinstance(node, ast.Constant) else None


def raised_codes() -> dict[str, set[int]]:
    """Every literal problem code built in the services and the chassis, with its statuses:
    ``Problem(status, code, …)``, the contracts' ``Refused(code, …, status=…)`` (409 by
    default) and ``NotFound(code, …)`` (404), and the chassis' fallback codes by status."""
    found: dict[str, set[int]] = {}
    for source in SOURCES:
        for path in source.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                keywords = {k.arg: k.value for k in node.keywords}
                if name == "Problem" and len(node.args) >= 2:
                    code, status = _text(node.args[1]), _status(node.args[0], 0)
                elif name == "Refused" and node.args:
                    code, status = _text(node.args[0]), _status(keywords.get("status"), 409)
                elif name == "NotFound" and node.args:
                    code, status = _text(node.args[0]), 404
                else:
                    continue
                if code is not None and status is not None:
                    found.setdefault(code, set()).add(status)
    for status, code in _STATUS_CODES.items():
        found.setdefault(code, set()).add(status)
    return found


def documented_codes() -> dict[str, str]:
    """code → its status cell, from the reference table."""
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \|", DOC.read_text(), flags=re.MULTILINE)
    return {code: status.strip() for code, status in rows}


def test_the_scan_finds_the_codes_front_ends_rely_on() -> None:
    """The scan itself works: codes raised in each way are found with their status."""
    raised = raised_codes()
    assert raised["milestone.stale_version"] == {409, 412}  # Refused(status=…)
    assert raised["milestone.wrong_state"] == {409}  # Refused, default status
    assert raised["contract.not_found"] == {404}  # NotFound
    assert raised["auth.token_expired"] == {401}  # Problem in the chassis
    assert raised["stripe.<code>"] == {422}  # an f-string code
    assert raised["resource.not_found"] == {404}  # a fallback by status


def test_every_code_the_apis_raise_is_documented_with_its_status() -> None:
    documented = documented_codes()
    for code, statuses in sorted(raised_codes().items()):
        assert code in documented, f"{code} is raised but missing from docs/errors.md"
        cell = documented[code]
        for status in statuses:
            assert str(status) in cell, f"{code}: status {status} not in docs ({cell})"


def test_every_documented_code_is_still_raised() -> None:
    raised = raised_codes()
    stale = sorted(set(documented_codes()) - set(raised) - {"http.<status>"})
    assert stale == [], f"docs/errors.md documents codes nothing raises: {stale}"
