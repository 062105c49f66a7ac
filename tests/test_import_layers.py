"""The package's layers import one way, and no module reaches into another package.

Layers, from the bottom: ``_checks`` and ``_rules``; the engine (``_engine``:
knows nothing of learning rates); ``_search`` (tune's searches) and
``_results`` (NumPy results: no JAX, no engine); the fronts (``_range_test``,
``_lr_find``, ``_sweep``, ``_tune``, ``_transfer``); ``_cli``. A module may
import its own layer and those below; none imports ``_cli``; and a module
outside a package uses that package's public package-level names (``from
lrjax._engine import run``), never its private modules
(``lrjax._engine._runner``) nor its underscore names (``_engine._kernel``).
No function is longer than :data:`MAX_LINES` lines of code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "lrjax"

#: Each private package or module and the lrjax parts it may import.
BOTTOM = {"_checks", "_rules"}
ALLOWED = {
    "_checks": set(),
    "_rules": set(),
    "_engine": BOTTOM,
    "_search": BOTTOM | {"_engine"},
    "_results": BOTTOM | {"plotting"},
    "_range_test": BOTTOM | {"_engine", "_results", "_lr_find"},
    "_lr_find": BOTTOM | {"_engine", "_results"},
    "_sweep": BOTTOM | {"_engine", "_results"},
    "_tune": BOTTOM | {"_engine", "_search", "_results"},
    "_transfer": BOTTOM | {"_engine", "_results", "_range_test", "_sweep"},
    "_cli": BOTTOM
    | {
        "_compile_cache",
        "_range_test",
        "_lr_find",
        "_transfer",
        "data",
        "plotting",
        "schedules",
        "transforms",
        "_results",
    },
}
#: The most lines of code a function may have (its signature and docstring aside).
MAX_LINES = 80


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


def _package(path: Path) -> str:
    parts = _module_name(path).split(".")
    return parts[1] if len(parts) > 1 else ""


RESULTS = [p for p in FILES if _package(p) == "_results"]
ENGINE = [p for p in FILES if _package(p) == "_engine"]


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_results_are_numpy_only(path):
    """``_results`` computes on host arrays: it imports neither JAX nor the engine."""
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            where = f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
            assert name.split(".")[0] != "jax" and not name.startswith("lrjax._engine"), where


#: Names that are about learning rates: the engine trains copies from per-copy
#: hyperparameters and knows none of them by name.
RATE_WORDS = {"lr", "lrs", "rate", "rates", "learning_rate", "min_lr", "max_lr"}


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_engine_knows_nothing_about_rates(path):
    """No identifier of the engine names a rate, and it imports no schedule or transform."""
    for node in ast.walk(ast.parse(path.read_text())):
        found = None
        if isinstance(node, ast.Name):
            found = node.id
        elif isinstance(node, ast.arg):
            found = node.arg
        elif isinstance(node, ast.Attribute):
            found = node.attr
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found = node.name
        words = set() if found is None else set(found.lower().split("_")) | {found.lower()}
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}: {found}"
        assert not words & RATE_WORDS, where
    for module, _, line in _imports(path):
        assert not module.startswith(("lrjax.schedules", "lrjax.transforms")), f"{path}:{line}"


def _package_aliases(tree: ast.AST, me: str) -> dict[str, str]:
    """Local names bound to another lrjax package (``from lrjax import _engine``)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "lrjax":
            for a in node.names:
                if a.name.startswith("_") and a.name != me:
                    out[a.asname or a.name] = a.name
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_reads_another_packages_underscore_names(path):
    """``_engine.run`` is fine; ``_engine._kernel`` or ``from lrjax._engine import
    _kernel`` (from outside the engine) is not."""
    tree = ast.parse(path.read_text())
    me = _package(path)
    aliases = _package_aliases(tree, me)
    for node in ast.walk(tree):
        named = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        if named and node.value.id in aliases:
            where = f"{path.relative_to(ROOT)}:{node.lineno} reads {node.value.id}.{node.attr}"
            assert not node.attr.startswith("_"), where
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lrjax."):
            other = node.module.split(".")[1]
            if other != me:
                for a in node.names:
                    where = f"{path.relative_to(ROOT)}:{node.lineno} imports {a.name}"
                    assert not a.name.startswith("_") or a.name.startswith("__"), where


def _code_lines(fn: ast.AST, lines: list[str]) -> int:
    """Lines of a function's body holding code: its docstring, blank lines and
    comment lines aside (nested functions count where they sit)."""
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if not body:
        return 0
    text = lines[body[0].lineno - 1 : fn.end_lineno]
    return sum(1 for t in text if t.strip() and not t.strip().startswith("#"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_is_longer_than_max_lines(path):
    source = path.read_text()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = _code_lines(node, lines)
            where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {n} lines of code"
            assert n <= MAX_LINES, where
