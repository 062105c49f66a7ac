"""The package's layers import one way, and no module reaches into another package.

Layers, from the bottom: ``_checks``; the engine (``_engine``: knows nothing of
learning rates); ``_search`` (tune's strategies) and ``_results`` (NumPy
results); the fronts (``_range_test``, ``_lr_find``, ``_sweep``, ``_tune``);
``_cli``. A module may import its own layer and those below; none imports
``_cli``; and a module outside a package uses that package's package-level
names (``from lrjax._engine import run``), never its private modules
(``lrjax._engine._runner``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "lrjax"

#: Each private package or module and the lrjax parts it may import.
ALLOWED = {
    "_checks": set(),
    "_engine": {"_checks"},
    "_search": {"_checks", "_engine"},
    "_results": {"_checks", "_engine", "plotting"},
    "_range_test": {"_checks", "_engine", "_results", "_lr_find"},
    "_lr_find": {"_checks", "_engine", "_results"},
    "_sweep": {"_checks", "_engine", "_results"},
    "_tune": {"_checks", "_engine", "_search", "_results"},
    "_cli": {
        "_checks",
        "_compile_cache",
        "_range_test",
        "_lr_find",
        "data",
        "plotting",
        "schedules",
        "transforms",
        "_engine",
        "_results",
    },
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """``(module, names, line)`` for every ``import``/``from ... import`` of lrjax."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lrjax"):
            out.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("lrjax"):
                    out.append((a.name, [], node.lineno))
    return out


def _targets(module: str, names: list[str]) -> list[str]:
    """The lrjax modules an import statement reaches (``from lrjax import _engine``
    reaches ``lrjax._engine``)."""
    if module == "lrjax":
        return [f"lrjax.{n}" for n in names if n.startswith("_") and not n.startswith("__")] or [
            "lrjax"
        ]
    return [module]


FILES = sorted(p for p in ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layers(path):
    me = _module_name(path).split(".")
    top = me[1] if len(me) > 1 else ""
    for module, names, line in _imports(path):
        for target in _targets(module, names):
            parts = target.split(".")
            other = parts[1] if len(parts) > 1 else ""
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            assert other != "_cli" or top in ("_cli", "cli", "__main__"), where
            if other == top or not other:
                continue
            if top in ALLOWED:
                assert other in ALLOWED[top] or not other.startswith("_"), where
            # another package's private module: use the package-level name
            private_inside = len(parts) > 2 and parts[2].startswith("_")
            assert not private_inside, where
