"""The dependency rules of ARCHITECTURE.md, checked by walking the imports of the tree.

1. core/ imports no platform, payment, HTTP-server or storage library.
2. The shared kernel (the modules at the top of core/) imports no area at run time; the
   composition root ``core/app.py`` is the one module that puts the areas together. Names
   used only for typing (under ``if TYPE_CHECKING:``) are allowed: the unit of work gathers
   every area's repository port.
3. An area imports another area only through that package's public names
   (``from core.billing import CreditLedger``, never ``from core.billing.ledger import …``).
4. The areas depend on each other without a cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

FORBIDDEN = {"discord", "telegram", "stripe", "aiohttp", "sqlalchemy", "storage", "bot", "payments"}
ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"
COMPOSITION_ROOT = "core.app"


@dataclass(frozen=True)
class Imported:
    """One imported module as written, and whether it is only imported for typing."""

    module: str
    typing_only: bool


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(path: Path) -> list[Imported]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Imported] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Imported(alias.name, typing_only) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(Imported(node.module, typing_only))
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(tree, False)
    return found


def _imports(path: Path) -> set[str]:
    return {item.module.split(".")[0] for item in _imported(path)}


def _module_name(core: Path, path: Path) -> str:
    parts = path.relative_to(core.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _areas(core: Path) -> set[str]:
    return {p.name for p in core.iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def _area_of(module: str, areas: set[str]) -> str | None:
    parts = module.split(".")
    if parts[0] == "core" and len(parts) >= 2 and parts[1] in areas:
        return parts[1]
    return None


def layering_violations(core: Path) -> list[str]:
    """Every import in ``core`` that breaks rules 2–4, as readable lines."""
    areas = _areas(core)
    problems: list[str] = []
    edges: dict[str, set[str]] = {area: set() for area in areas}
    for path in sorted(core.rglob("*.py")):
        me = _module_name(core, path)
        my_area = _area_of(me, areas)
        for item in _imported(path):
            target = _area_of(item.module, areas)
            if target is None or target == my_area:
                continue
            if my_area is None:
                if me != COMPOSITION_ROOT and not item.typing_only:
                    problems.append(f"{me}: the shared kernel imports the area {item.module}")
                continue
            if item.module != f"core.{target}":
                problems.append(
                    f"{me}: reaches into {item.module}; import from core.{target} instead"
                )
            if not item.typing_only:
                edges[my_area].add(target)
    problems.extend(f"areas import each other in a cycle: {c}" for c in _cycles(edges))
    return problems


def _cycles(edges: dict[str, set[str]]) -> list[str]:
    cycles: list[str] = []
    state: dict[str, int] = {}

    def walk(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in state:
                walk(nxt, [*trail, nxt])
        state[node] = 2

    for area in sorted(edges):
        if area not in state:
            walk(area, [area])
    return cycles


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


def test_areas_and_kernel_keep_the_dependency_rule() -> None:
    assert {"generation", "billing", "privacy", "safety"} <= _areas(CORE)
    assert layering_violations(CORE) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "core"


def test_the_layering_rule_catches_each_kind_of_violation(tmp_path: Path) -> None:
    """A synthetic tree with one violation of each rule, and lawful imports beside them."""
    core = _tree(
        tmp_path,
        {
            "core/__init__.py": "",
            "core/types.py": "from core.billing import Ledger\n",
            "core/repositories.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from core.billing import Ports\n"
            ),
            "core/app.py": "from core.billing import Ledger\nfrom core.generation import Jobs\n",
            "core/billing/__init__.py": "from core.billing.ledger import Ledger\n",
            "core/billing/ledger.py": (
                "from core.types import X\nfrom core.billing.ports import P\n"
            ),
            "core/billing/ports.py": "from core.generation.worker import Worker\n",
            "core/generation/__init__.py": "from core.generation.worker import Worker\n",
            "core/generation/worker.py": "from core.billing import Ledger\n",
        },
    )
    assert layering_violations(core) == [
        "core.billing.ports: reaches into core.generation.worker; import from core.generation "
        "instead",
        "core.types: the shared kernel imports the area core.billing",
        "areas import each other in a cycle: billing -> generation -> billing",
    ]


def test_a_lawful_synthetic_tree_passes(tmp_path: Path) -> None:
    core = _tree(
        tmp_path,
        {
            "core/__init__.py": "",
            "core/types.py": "import dataclasses\n",
            "core/billing/__init__.py": "from core.billing.ledger import Ledger\n",
            "core/billing/ledger.py": "from core.types import X\n",
            "core/generation/__init__.py": "",
            "core/generation/worker.py": (
                "from core.billing import Ledger\nfrom core import types\n"
            ),
        },
    )
    assert layering_violations(core) == []
