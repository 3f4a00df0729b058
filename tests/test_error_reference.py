"""docs/errors.md lists every problem code the APIs can answer, with its HTTP status:
front ends switch on these codes, so a code added (or dropped) in the code without the
reference is a broken promise to them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from cairn_chassis.errors import _STATUS_CODES
from cairn_contracts.entrypoints.problems import PRECONDITION_FAILED, STATUS

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


def domain_statuses(code: str) -> set[int]:
    """The statuses the contracts API answers a domain refusal with: its entry in the
    entry point's one table (412 too where an If-Match made it a precondition)."""
    if code not in STATUS:
        return set()
    return {STATUS[code], *([412] if code in PRECONDITION_FAILED else [])}


def domain_codes() -> set[str]:
    """Every literal code of the contracts domain: ``Refused(code, …)``,
    ``NotFound(code, …)`` and the workflow predicates' ``Predicate(name, test, code, …)``."""
    found: set[str] = set()
    for path in SOURCES[0].rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            position = {"Refused": 0, "NotFound": 0, "Predicate": 2}.get(name or "")
            if position is not None and len(node.args) > position:
                code = _text(node.args[position])
                if code is not None:
                    found.add(code)
    return found


def raised_codes() -> dict[str, set[int]]:
    """Every literal problem code built in the services and the chassis, with its statuses:
    ``Problem(status, code, …)``, the contracts domain's codes with the status its entry
    point maps them to, and the chassis' fallback codes by status."""
    found: dict[str, set[int]] = {code: domain_statuses(code) for code in domain_codes()}
    for source in SOURCES:
        for path in source.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name == "Problem" and len(node.args) >= 2:
                    code, status = _text(node.args[1]), _status(node.args[0], 0)
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
    assert raised["milestone.stale_version"] == {409, 412}  # Refused; 412 on If-Match
    assert raised["milestone.wrong_state"] == {409}  # Refused
    assert raised["setting.no_freelancer_approval"] == {409}  # a workflow predicate's
    assert raised["contract.not_found"] == {404}  # NotFound
    assert raised["auth.token_expired"] == {401}  # Problem in the chassis
    assert raised["stripe.<code>"] == {422}  # an f-string code
    assert raised["resource.not_found"] == {404}  # a fallback by status


def test_every_domain_refusal_has_one_status_in_the_entry_points_table() -> None:
    unmapped = sorted(code for code in domain_codes() if code not in STATUS)
    assert unmapped == [], f"add these to cairn_contracts.entrypoints.problems.STATUS: {unmapped}"
    unused = sorted(set(STATUS) - domain_codes())
    assert unused == [], f"STATUS maps codes nothing raises: {unused}"


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
