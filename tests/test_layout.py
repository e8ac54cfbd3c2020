"""The layout rules of docs/ARCHITECTURE.md that neither ruff nor the import contract checks."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIE = ROOT / "sie"
MAX_FUNCTION_LINES = 80


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_no_function_in_sie_is_longer_than_80_lines():
    long = [
        f"{p.relative_to(ROOT)}:{f.lineno} {f.name} ({f.end_lineno - f.lineno + 1} lines)"
        for p in sorted(SIE.rglob("*.py"))
        for f in _functions(p)
        if f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_the_library_logs_and_only_the_cli_prints():
    printing = [
        f"{p.relative_to(ROOT)}:{node.lineno}"
        for p in sorted(SIE.rglob("*.py"))
        if p.name != "cli.py"
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    ]
    assert printing == []


def test_test_fixtures_live_under_tests():
    assert not (SIE / "importance" / "synthetic.py").exists()
    assert (ROOT / "tests" / "fixtures.py").exists()
