"""The shape of the code (docs/ARCHITECTURE.md): layers, no import circles, small modules
and functions. These fail when the tree grows out of shape, like any other regression."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APPS = ("gateway", "agents", "routines", "webhooks", "wingman")
#: Soft limits of style.md, enforced with a margin: a module over ~400 lines becomes a
#: package, a function over ~60 lines is split.
MAX_MODULE_LINES = 420
MAX_FUNCTION_LINES = 60


def _sources() -> list[Path]:
    files = []
    for app in APPS:
        files += [p for p in (REPO / app).rglob("*.py") if "migrations" not in p.parts]
    return sorted(files)


def test_import_contracts_hold():
    """import-linter: every layer imports only the layers below it, the gateway does not
    import the feature apps, and no two sibling modules or packages import each other."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--config", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_modules_stay_small():
    long = {
        str(p.relative_to(REPO)): n
        for p in _sources()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines (make them packages): {long}"


def test_functions_stay_short():
    long = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines})")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
