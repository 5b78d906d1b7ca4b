"""Reason codes are one documented list, and the code uses only codes from it."""

from __future__ import annotations

import ast
from pathlib import Path

from bookmark_enrich.reasons import REASON_DOCS, Reason, describe

PACKAGE = Path(__file__).resolve().parent.parent / "bookmark_enrich"


def test_every_reason_is_documented() -> None:
    assert set(REASON_DOCS) == set(Reason)
    for reason, (stages, meaning) in REASON_DOCS.items():
        assert stages and meaning.endswith("."), reason
    assert describe("timeout")
    assert describe("no_such_reason") == ""


def _literal_reasons() -> list[tuple[str, int, str]]:
    """String literals passed as the reason of StageError / StageOutcome.failed/skipped."""
    found: list[tuple[str, int, str]] = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else \
                func.id if isinstance(func, ast.Name) else ""
            if name not in ("StageError", "failed", "skipped"):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((str(path.relative_to(PACKAGE)), node.lineno, first.value))
    return found


def test_code_uses_only_documented_reasons() -> None:
    known = {r.value for r in Reason}
    unknown = [f"{f}:{line}: {code}" for f, line, code in _literal_reasons() if code not in known]
    assert not unknown, "reason codes missing from bookmark_enrich/reasons.py: " + ", ".join(
        unknown)
