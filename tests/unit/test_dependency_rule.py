"""core/ imports no platform, payment, HTTP-server or storage library (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"discord", "telegram", "stripe", "aiohttp", "sqlalchemy", "storage", "bot", "payments"}
CORE = Path(__file__).resolve().parents[2] / "core"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_sdk_or_storage() -> None:
    offenders = {
        str(path.relative_to(CORE.parent)): sorted(_imports(path) & FORBIDDEN)
        for path in CORE.rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"core/ must not import these: {offenders}"


def test_the_walker_sees_imports(tmp_path: Path) -> None:
    """The rule itself can fail: a file importing sqlalchemy is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom sqlalchemy import select\nimport discord.ext\n")
    assert _imports(bad) & FORBIDDEN == {"sqlalchemy", "discord"}
