"""No docstring or CLI help holds a benchmark figure.

Measured numbers (an excess of 0.028, a 1.3x speed-up, a date, a machine)
go stale in an API reference the moment the code or the machine changes, and
nothing re-runs them there. Docstrings state the rule and point to
``benchmarks/README.md``, where every published number names the output file
it comes from (``tests/test_benchmark_numbers.py``). The patterns are narrow
on purpose: formulas (``best_lr * min(1, num_steps / total_steps)``), defaults
(``tol=0.1``) and rules ("70% of the free device memory") pass.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import lrjax
from lrjax import cli

#: ``(what it catches, pattern)``; each is a way a measurement was written.
FIGURES = [
    ("a score on a suite", r"\b(?:mean|max(?:imum)?|median)\s+excess\s+(?:of\s+)?\d*\.\d"),
    ("an excess figure", r"\bexcess\s+(?:of\s+)?0\.\d{2,}"),
    ("a count of problems", r"\b(?:on|in)\s+\d+\s+of\s+(?:the\s+)?\d+\s+(?:problems|cells|seeds)"),
    ("a speed-up", r"\b\d+(?:\.\d+)?\s*x\s+(?:faster|slower|the\s+speed)\b"),
    ("a speed-up", r"\bspeed-?up\s+of\s+\d"),
    (
        "a timing before/after",
        r"\d+(?:\.\d+)?\s*s\s*"
        r"(?:->|→|to)\s*(?:about\s+)?\d+(?:\.\d+)?\s*s\b",
    ),
    ("a share of a measurement", r"\d+(?:\.\d+)?\s*%\s+of\s+(?:the\s+)?(?:measured|peak|matmul)"),
    ("a distance to a baseline", r"\bwithin\s+0\.\d+\s+of\s+(?:random|the\s+grid|grid)"),
    ("a compute ratio", r"\bwith\s+\d+(?:\.\d+)?x\s+(?:its|the)\s+compute"),
    ("a date", r"\b20[2-9]\d-[01]\d(?:-[0-3]\d)?\b"),
    ("a machine", r"\bmeasured\s+on\s+(?:an?\s+)?(?:H100|H200|A100|TPU|GPU|CPU|\d+-core)"),
    ("a machine", r"\bon\s+a\s+(?:busy\s+)?\d+-core\s+machine\b"),
]
PATTERNS = [(what, re.compile(p, re.IGNORECASE)) for what, p in FIGURES]

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(lrjax.__path__, prefix="lrjax.")
    if m.name != "lrjax.__main__"
)


def docstrings(module_name: str) -> dict[str, str]:
    """``{qualified name: docstring}`` of a module, its classes, functions and methods."""
    module = importlib.import_module(module_name)
    found = {module_name: inspect.getdoc(module) or ""}
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module_name:
            continue  # imported from elsewhere: checked there
        if inspect.isfunction(obj) or inspect.isclass(obj):
            found[f"{module_name}.{name}"] = inspect.getdoc(obj) or ""
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                target = member.fget if isinstance(member, property) else member
                target = getattr(target, "__func__", target)  # static and class methods
                if inspect.isfunction(target):
                    found[f"{module_name}.{name}.{attr}"] = inspect.getdoc(target) or ""
    return found


def figures_in(text: str) -> list[str]:
    flat = " ".join(text.split())  # a figure may be wrapped over two lines
    return [f"{what}: {m.group(0)!r}" for what, p in PATTERNS for m in p.finditer(flat)]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("At 3x: mean excess 0.028, max 0.084, within 0.05 on 7 of 9 problems", True),
        ("with validation data it has the lowest max excess in 5 of 6 cells", True),
        ("the exit went from about 0.8 s to\n 0.1 s", True),
        ("vmap is 1.3x faster than the loop", True),
        ("default PBT is within 0.01 of random search with 4x its compute on all four", True),
        ("one run on 2026-11-30", True),
        ("brings that back to float32 rounding (measured on an H200)", True),
        ("reached 62% of the measured matmul peak", True),
        ("``best_lr * min(1, num_steps / total_steps)``: the best constant rate", False),
        ("fits 70% of the free device memory (host RAM on a CPU)", False),
        ("scaled by 1/3 for a run 3x as long as this test; tol=0.1", False),
        ("the smallest rate scoring within 10% of the score range", False),
        ("excess ``(L - L*) / (L0 - L*)`` against a dense grid", False),
    ],
)
def test_the_patterns_catch_figures_and_pass_rules(text, found):
    assert bool(figures_in(text)) == found, figures_in(text)


@pytest.mark.parametrize("name", MODULES)
def test_no_docstring_holds_a_benchmark_figure(name: str) -> None:
    bad = {k: figures_in(v) for k, v in docstrings(name).items() if figures_in(v)}
    assert not bad, f"benchmark figures in docstrings (point to benchmarks/README.md): {bad}"


@pytest.mark.parametrize("argv", [["--help"], ["find", "--help"], ["plot", "--help"],
                                  ["list", "--help"]])  # fmt: skip
def test_no_cli_help_holds_a_benchmark_figure(argv, capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(argv)
    text = capsys.readouterr().out
    assert text.startswith("usage: lrjax"), text
    assert not figures_in(text), figures_in(text)
