"""Writes everything the docs show that comes from running code into the pages.

The pages under ``docs/`` read fully on GitHub, unbuilt: every generated part
is committed, between a pair of HTML comments that say where it came from::

    <!-- snippet: guide/plateau.py -->     docs/snippets/guide/plateau.py, what it
    ...                                    printed, and the figures it drew
    <!-- /snippet -->
    <!-- example: examples/sgdr_restarts.py -->   a script's full code
    <!-- /example -->
    <!-- migration: torch -->              a table of docs/migration_table.py
    <!-- /migration -->
    <!-- gallery -->                       the pictures of docs/gen_gallery.py
    <!-- /gallery -->
    <!-- api: lrjax.cosine lrjax.wsd -->     a summary of each name: signature and
    <!-- /api -->                          first paragraph of its docstring

On the built site the ``api:`` summaries give way to the full mkdocstrings
entries (``docs/hooks/lrjax_docs.py``); everything else shows as committed.

Running this script reruns every snippet and rewrites the text between the
markers (a new opening marker without its closing one gets filled in too),
the PNGs under ``docs/assets/gallery/`` and ``docs/assets/snippets/``, and a
``figures.json`` beside each set of PNGs with the data every picture plots
(per line: length, min, max, mean and a few samples; titles, labels, legend
texts). ``tests/test_docs.py`` regenerates all of it in memory and fails when
a committed page or picture is out of date, so after changing a snippet, a
schedule, a migration row or a gallery entry, run::

    python docs/build_pages.py

The script writes exactly what this machine computes. The freshness test
compares more loosely, because XLA's CPU code depends on the vector
instructions it may use (SSE4.2, AVX, AVX2, AVX-512), so float results differ
in the last bits between CPUs, and grow apart along a training run:

- printed numbers within :data:`TEXT_RTOL` or one unit in their last printed
  digit; wall-clock durations (``1.5 s``) are not compared;
- pictures through ``figures.json`` (PNG bytes vary across matplotlib and
  FreeType versions), within :data:`FIGURE_RTOL`;
- outputs that follow a chaotic trajectory (:data:`CHAOTIC_OUTPUT`,
  :data:`CHAOTIC_FIGURES`) by their form only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import os
import posixpath
import re
import runpy
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
SNIPPETS = DOCS / "snippets"
GALLERY_DIR = DOCS / "assets" / "gallery"
SNIPPET_FIGURES_DIR = DOCS / "assets" / "snippets"
#: The README's picture: what ``lrjax find`` draws with its defaults.
README_DIR = DOCS / "assets"
README_PICTURE = "range_test.png"
FIGURES_JSON = "figures.json"
COMMAND = "python docs/build_pages.py"

#: Generated blocks: ``<!-- kind: arg -->`` (or ``<!-- gallery -->``) ... ``<!-- /kind -->``.
KINDS = ("snippet", "example", "migration", "gallery", "api")
_OPEN = re.compile(rf"^<!-- (?P<kind>{'|'.join(KINDS)})(?:: (?P<arg>[\w./-]+(?: [\w./-]+)*))? -->$")
_CLOSE = re.compile(rf"^<!-- /(?P<kind>{'|'.join(KINDS)}) -->$")

#: Savefig resolution of snippet figures.
DPI = 110

# How far a committed output may be from this machine's before it is stale.
# The snippets train float32 models for 50 to 300 steps; a rounding difference
# between instruction sets (1e-7) grows along such a run. On trajectories that
# are not chaotic it stayed below 2e-3 relative (measured under
# --xla_cpu_max_isa=SSE4_2, AVX, AVX2 and AVX-512: 1.8e-3 at the end of
# schedules_compared's wsd curve, 8e-4 at the last point before divergence of
# the sweep in range_test). A picture cannot show 5e-3: it moves a curve by
# under a pixel on a 400-pixel axis, or 0.002 decades on a log axis. A printed
# number keeps 2e-3 (or one unit in its last printed digit, which is coarser
# for the 3 or 4 digits the snippets print): a changed snippet, rate or
# schedule moves these numbers by far more.
TEXT_RTOL = 2e-3
FIGURE_RTOL = 5e-3

#: Printed lines that follow a chaotic trajectory, so that another CPU prints
#: other numbers: ``{snippet: {line prefix: (low, high)}}``. The pages show what
#: the machine that built them printed; the test checks only the line's form
#: (the same text and integers, every other number finite and in [low, high]).
CHAOTIC_OUTPUT: dict[str, dict[str, tuple[float, float]]] = {
    # tune's ranking and a best-of-84 random search: another CPU picks another
    # member (best lr 0.0938 on one, 0.017 on another). The best setting and
    # the narrowed range lie in the search space; losses below chance (ln 10).
    # The median of five best-of-21 searches moves with the XLA release (0.035
    # with jaxlib 0.10.2, 0.032 with 0.10.0, the lowest pyproject.toml allows).
    "guide/tune.py": {
        "best:": (1e-5, 10.0),
        "rate test:": (1e-5, 10.0),
        "tune, 40 members:": (0.0, 5124.0),
        "random search, 21 settings:": (0.0, 2.31),
        "random search, 84 settings:": (0.0, 2.31),
    },
    # Constant rates high enough to keep the loss noisy to the end (SGD with
    # momentum 0.9 at 0.5, plain SGD at 0.3 with batch 32): losses below
    # chance level (ln 10 = 2.30), accuracy in [0, 1].
    "guide/schedules_compared.py": {"constant ": (0.0, 2.31)},
    "guide/batch_size.py": {"constant: B=32": (0.0, 2.31)},
    # Momentum's loss at 3.2x its best rate, at the edge of divergence, and
    # that loss over the best one.
    "guide/sensitivity.py": {"sgd + momentum 0.9": (0.0, 1000.0)},
    # transfer's intervals are percentiles of 2,000 bootstrap replicates, each of
    # which chooses its own rule (here about 60/40 between two): a rounding
    # difference flips a few replicates' choice and moves an interval's end by
    # ~1% (0.00828 with jaxlib 0.10.2, 0.00817 with 0.10.0).
    "cli/transfer.py": {"rate at width 512:": (1e-4, 1.0), "law: rate ~ width^": (-3.0, 3.0)},
}

#: Pictures (or their lines, by label) drawn from chaotic trajectories (see
#: :data:`CHAOTIC_OUTPUT`), compared by form: the same titles, labels and
#: numbers of points, every plotted value finite. ``"*"``: every line.
CHAOTIC_FIGURES: dict[str, str | tuple[str, ...]] = {
    "guide/tune-1.png": "*",  # the members, round by round
    "guide/schedules_compared-1.png": ("constant",),
    # Three range tests with error bars; momentum's last finite rates are at
    # the edge of divergence (its unlabelled error-bar lines: the whole picture).
    "guide/sensitivity-1.png": "*",
}


# -------------------------------------------------------------- figure data


def _summary(values: Any) -> dict[str, Any]:
    """A small, comparable description of a plotted array."""
    import numpy as np

    a = np.asarray(values, dtype=np.float64).ravel()
    finite = a[np.isfinite(a)]
    out: dict[str, Any] = {"n": int(a.size), "nonfinite": int(a.size - finite.size)}
    if finite.size:
        idx = np.unique(np.linspace(0, finite.size - 1, min(9, finite.size)).round().astype(int))
        out |= {
            "min": float(finite.min()),
            "max": float(finite.max()),
            "mean": float(finite.mean()),
            "samples": [float(finite[i]) for i in idx],
        }
    return out


def figure_data(fig: Any) -> dict[str, Any]:
    """What a matplotlib figure shows, as plain data (not pixels).

    For every axes: title, axis labels and scales, legend and free texts, and
    a :func:`_summary` of every line's x and y, of every collection's points
    (scatter, ``fill_between``) and of the bars' heights.
    """
    axes = []
    for ax in fig.axes:
        legend = ax.get_legend()
        lines = [
            {
                "label": str(ln.get_label()),
                "x": _summary(ln.get_xdata()),
                "y": _summary(ln.get_ydata()),
            }
            for ln in ax.get_lines()
        ]
        collections = []
        for c in ax.collections:
            pts = c.get_offsets()
            if len(pts) <= 1 and hasattr(c, "get_paths") and c.get_paths():
                pts = c.get_paths()[0].vertices
            collections.append(_summary(pts))
        bars = [p.get_height() for p in ax.patches if hasattr(p, "get_height")]
        axes.append(
            {
                "title": ax.get_title(),
                "xlabel": ax.get_xlabel(),
                "ylabel": ax.get_ylabel(),
                "xscale": ax.get_xscale(),
                "yscale": ax.get_yscale(),
                "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
                "texts": [t.get_text() for t in ax.texts],
                "lines": lines,
                "collections": collections,
                "bars": _summary(bars) if bars else None,
            }
        )
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    return {"suptitle": suptitle, "axes": axes}


def _close(a: Any, b: Any, rtol: float, atol: float) -> bool:
    """Equal structure and strings; numbers within ``rtol`` / ``atol``."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rtol, atol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, rtol, atol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return False
        return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)
    return a == b


def same_figure_data(a: Any, b: Any, rtol: float = FIGURE_RTOL, atol: float = 1e-9) -> bool:
    """Whether two :func:`figure_data` (or ``figures.json``) values agree."""
    return _close(a, b, rtol, atol)


# ------------------------------------------------------------ printed text

_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
#: A wall-clock duration as the CLI prints it (``; 1.5 s``): never the same twice.
_SECONDS = re.compile(r"(?<![\w.])\d+(?:\.\d+)? s\b")


def _last_digit(token: str) -> float:
    """One unit in the last printed digit of a number (0 for integers)."""
    mantissa, _, exponent = token.lower().partition("e")
    if "." not in mantissa:
        return 0.0 if not exponent else 10.0 ** int(exponent)
    decimals = len(mantissa.split(".")[1])
    return 10.0 ** (int(exponent or 0) - decimals)


def _without_durations(text: str) -> str:
    return _SECONDS.sub("<t> s", text)


def same_text(committed: str, fresh: str, rtol: float = TEXT_RTOL) -> bool:
    """Equal text, except numbers may differ by ``rtol`` or one unit in their last digit.

    Integers (no point, no exponent) must be equal. This absorbs float results
    that differ between CPUs (see :data:`TEXT_RTOL`) and round to the other side.
    Durations (a number, a space, ``s``: ``1.5 s``) are not compared.
    """
    if committed == fresh:
        return True
    committed, fresh = _without_durations(committed), _without_durations(fresh)
    a, b = _NUMBER.split(committed), _NUMBER.split(fresh)
    if a != b:
        return False
    for x, y in zip(_NUMBER.findall(committed), _NUMBER.findall(fresh)):
        if x == y:
            continue
        unit = max(_last_digit(x), _last_digit(y))
        allowed = max(1.01 * unit, rtol * max(abs(float(x)), abs(float(y))))
        if unit == 0.0 or abs(float(x) - float(y)) > allowed:
            return False
    return True


def same_form(committed: str, fresh: str, low: float, high: float) -> bool:
    """Whether a chaotic printed line (:data:`CHAOTIC_OUTPUT`) has the committed one's form.

    The same text and integers; every other number of ``fresh`` in [low, high]
    (``nan`` or ``inf`` are not numbers here, so they change the text).
    """

    def form(line: str) -> tuple[list[str], list[str]]:
        numbers = _NUMBER.findall(line)
        return _NUMBER.split(line), [n if _last_digit(n) == 0.0 else "x" for n in numbers]

    values = [float(n) for n in _NUMBER.findall(fresh) if _last_digit(n) != 0.0]
    return form(committed) == form(fresh) and all(low <= v <= high for v in values)


def same_figure_form(a: Any, b: Any) -> bool:
    """Equal structure, strings and integers (point counts); every float finite."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_figure_form(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_figure_form(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return all(isinstance(v, (int, float)) and math.isfinite(v) for v in (a, b))
    return a == b


def first_difference(committed: str, fresh: str) -> str:
    """The first differing line pair, for an error message."""
    for i, (x, y) in enumerate(zip(committed.splitlines(), fresh.splitlines()), 1):
        if not same_text(x, y):
            return f"line {i}: committed {x!r}, now {y!r}"
    n, m = len(committed.splitlines()), len(fresh.splitlines())
    return f"committed {n} lines, now {m}"


# ----------------------------------------------------------------- snippets


@dataclass
class SnippetRun:
    """What running one snippet produced."""

    code: str
    output: str
    figures: list[tuple[bytes, dict[str, Any]]] = field(default_factory=list)


def run_snippet(path: Path) -> SnippetRun:
    """Runs a snippet as ``__main__`` in a scratch directory.

    Returns its code, what it printed (trailing space stripped) and, for every
    figure it left open, the PNG and :func:`figure_data`.
    """
    path = Path(path).resolve()
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["COLUMNS"] = "90"  # argparse help wraps the same on every machine
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.close("all")
    out = io.StringIO()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            with contextlib.redirect_stdout(out):
                runpy.run_path(str(path), run_name="__main__")
        finally:
            os.chdir(cwd)
    figures = []
    for num in plt.get_fignums():
        fig = plt.figure(num)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        figures.append((buf.getvalue(), figure_data(fig)))
    plt.close("all")
    code = path.read_text(encoding="utf-8").rstrip() + "\n"
    output = "\n".join(ln.rstrip() for ln in out.getvalue().rstrip().splitlines())
    return SnippetRun(code, output, figures)


def snippet_paths() -> list[str]:
    """Every snippet, as a path relative to ``docs/snippets``."""
    return sorted(p.relative_to(SNIPPETS).as_posix() for p in SNIPPETS.rglob("*.py"))


def run_all_snippets(verbose: bool = False) -> dict[str, SnippetRun]:
    """``{relative path: run}`` for every snippet; a failing one raises, naming it."""
    import time

    runs = {}
    for rel in snippet_paths():
        start = time.perf_counter()
        try:
            runs[rel] = run_snippet(SNIPPETS / rel)
        except BaseException as e:
            raise RuntimeError(f"docs snippet {rel} failed: {e!r}") from e
        if verbose:
            print(f"ran {rel} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return runs


def committed_output(rel: str, text: str) -> str:
    """The Output block a page's ``text`` holds for snippet ``rel`` ("" if none)."""
    body = text.split(f"<!-- snippet: {rel} -->\n", 1)[1].split("<!-- /snippet -->", 1)[0]
    m = re.search(r'^```text title="Output"\n(.*?)\n```$', body, re.S | re.M)
    return m.group(1) if m else ""


def settle_chaotic(runs: dict[str, SnippetRun]) -> dict[str, SnippetRun]:
    """``runs`` with each chaotic output that has its committed form replaced by the committed one.

    For the freshness check only (:func:`write` uses the runs as they are): a
    line of :data:`CHAOTIC_OUTPUT` that passes :func:`same_form`, and the data
    of a picture or line of :data:`CHAOTIC_FIGURES` that passes
    :func:`same_figure_form`, then compare equal; one that does not stays as
    computed and is reported stale.
    """
    texts = [p.read_text(encoding="utf-8") for p in page_paths()]
    figures_json = SNIPPET_FIGURES_DIR / FIGURES_JSON
    figures = json.loads(figures_json.read_text()) if figures_json.is_file() else {}
    settled = {}
    for rel, run in runs.items():
        output, drawn = run.output, list(run.figures)
        chaotic = CHAOTIC_OUTPUT.get(rel, {})
        page = next((t for t in texts if f"<!-- snippet: {rel} -->\n" in t), None)
        if chaotic and page is not None:
            old, new = committed_output(rel, page).splitlines(), output.splitlines()
            for i, line in enumerate(new[: len(old)]):
                for prefix, (low, high) in chaotic.items():
                    if line.startswith(prefix) and same_form(old[i], line, low, high):
                        new[i] = old[i]
            output = "\n".join(new)
        for i, (png, data) in enumerate(drawn):
            name = snippet_figure_name(rel, i + 1)
            labels, old = CHAOTIC_FIGURES.get(name), figures.get(name)
            if labels is None or old is None:
                continue
            fresh = json.loads(dump_figures(data))
            if labels == "*":
                drawn[i] = (png, old if same_figure_form(old, fresh) else data)
                continue
            for ax_old, ax_new in zip(old["axes"], fresh["axes"]):
                for j, (ln_old, ln_new) in enumerate(zip(ax_old["lines"], ax_new["lines"])):
                    if ln_new["label"] in labels and same_figure_form(ln_old, ln_new):
                        ax_new["lines"][j] = ln_old
            drawn[i] = (png, fresh)
        settled[rel] = SnippetRun(run.code, output, drawn)
    return settled


def snippet_figure_name(rel: str, i: int) -> str:
    """``guide/foo.py``, 1 -> ``guide/foo-1.png`` (under ``docs/assets/snippets``)."""
    return f"{rel[:-3]}-{i}.png"


# ------------------------------------------------------------------ blocks


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def gallery_module() -> ModuleType:
    return _load("lrjax_docs_gallery", DOCS / "gen_gallery.py")


def migration_module() -> ModuleType:
    return _load("lrjax_docs_migration", DOCS / "migration_table.py")


def _link(page: str, target: str) -> str:
    """``target`` (relative to ``docs/``) as a link from ``page``."""
    return posixpath.relpath(target, posixpath.dirname(page) or ".")


def _snippet_block(rel: str, page: str, runs: dict[str, SnippetRun]) -> str:
    if rel not in runs:
        raise ValueError(f"{page}: no snippet docs/snippets/{rel}")
    run = runs[rel]
    parts = [f'```python title="docs/snippets/{rel}"\n{run.code}```\n']
    if run.output:
        parts.append(f'```text title="Output"\n{run.output}\n```\n')
    for i in range(1, len(run.figures) + 1):
        name = snippet_figure_name(rel, i)
        target = _link(page, f"assets/snippets/{name}")
        parts.append(f"![{posixpath.basename(name)}]({target})\n")
    return "\n".join(parts)


def _example_block(rel: str, page: str) -> str:
    path = ROOT / rel
    if not rel.startswith("examples/") or not path.is_file():
        raise ValueError(f"{page}: no example script {rel}")
    code = path.read_text(encoding="utf-8").rstrip() + "\n"
    return f'```python title="{rel}"\n{code}```\n'


def resolve(name: str) -> Any:
    """The object a public dotted name (``lrjax.cosine``, ``lrjax.data``) refers to."""
    module, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return importlib.import_module(name)


def _default(value: Any) -> str:
    if callable(value) and hasattr(value, "__name__"):  # optimizer=optax.adam
        return f"{value.__module__.split('.')[0]}.{value.__name__}"
    return repr(value)


def signature(obj: Any) -> str:
    """``(a, b=1, *, c=None)``: parameters and defaults, without annotations."""
    import inspect

    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    parts, star = [], False
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            parts.append(f"*{p.name}")
            star = True
            continue
        if p.kind is p.VAR_KEYWORD:
            parts.append(f"**{p.name}")
            continue
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        default = "" if p.default is p.empty else f"={_default(p.default)}"
        parts.append(p.name + default)
    return f"({', '.join(parts)})"


_ROLE = re.compile(r":(?:func|class|meth|attr|data|mod|obj):`~?([^`]+)`")


def summary(obj: Any) -> str:
    """The first paragraph of a docstring, on one line, reST roles as code."""
    import inspect

    first = (inspect.getdoc(obj) or "").split("\n\n")[0]
    text = " ".join(first.split())
    text = _ROLE.sub(r"`\1`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _api_block(names: str) -> str:
    lines = []
    for name in names.split():
        obj = resolve(name)
        lines.append(f"- **`{name}`**`{signature(obj)}`: {summary(obj)}")
    return "\n".join(lines) + "\n"


def _block(kind: str, arg: str | None, page: str, runs: dict[str, SnippetRun]) -> str:
    if kind == "api":
        return _api_block(arg or "")
    if kind == "snippet":
        return _snippet_block(arg or "", page, runs)
    if kind == "example":
        return _example_block(arg or "", page)
    if kind == "migration":
        return migration_module().markdown(arg)
    return gallery_module().markdown(image_dir=_link(page, "assets/gallery"))


def render_page(text: str, page: str, runs: dict[str, SnippetRun]) -> str:
    """The page with every generated block written anew.

    Args:
      text: the page's Markdown as committed.
      page: its path relative to ``docs/`` (links are made relative to it).
      runs: :func:`run_all_snippets`' results.

    Raises:
      ValueError: a marker without its argument, a closing marker of another
        kind, or a reference to a snippet or script that does not exist.
    """
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            if _CLOSE.match(lines[i]):
                raise ValueError(f"{page}:{i + 1}: {lines[i]} without an opening marker")
            out.append(lines[i])
            i += 1
            continue
        kind, arg = m.group("kind"), m.group("arg")
        if (kind == "gallery") != (arg is None):
            raise ValueError(f"{page}:{i + 1}: malformed marker {lines[i]}")
        # Skip the old body, up to the closing marker (if this block was built before).
        end = i + 1
        while end < len(lines) and not _OPEN.match(lines[end]) and not _CLOSE.match(lines[end]):
            end += 1
        closed = end < len(lines) and _CLOSE.match(lines[end])
        if closed and closed.group("kind") != kind:
            raise ValueError(f"{page}:{end + 1}: {lines[end]} closes a {kind} block")
        out += [lines[i], "", _block(kind, arg, page, runs).rstrip("\n"), "", f"<!-- /{kind} -->"]
        i = end + 1 if closed else i + 1
    return "\n".join(out) + "\n"


def page_paths() -> list[Path]:
    """Every Markdown page under ``docs/``."""
    return sorted(DOCS.rglob("*.md"))


# ---------------------------------------------------------------- outputs


@dataclass
class Build:
    """Everything this script writes: ``{path: text}``, ``{path: png}``, figure data."""

    pages: dict[Path, str]
    pngs: dict[Path, bytes]
    figures: dict[Path, dict[str, Any]]  # figures.json path -> {png name: figure data}


def gallery_figures() -> dict[str, tuple[bytes, dict[str, Any]]]:
    """``{slug.png: (png, figure data)}`` for every gallery entry."""
    import matplotlib.pyplot as plt

    gallery = gallery_module()
    out = {}
    for entry in gallery.GALLERY:
        fig = gallery.figure(entry)
        data = figure_data(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        plt.close(fig)
        out[f"{entry.slug}.png"] = (buf.getvalue(), data)
    return out


def readme_figures() -> dict[str, tuple[bytes, dict[str, Any]]]:
    """``{range_test.png: (png, figure data)}``: ``lrjax find``'s own picture."""
    from lrjax._cli import find_result
    from lrjax._results import range_test_figure

    fig = range_test_figure(find_result([]))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return {README_PICTURE: (buf.getvalue(), figure_data(fig))}


def _figure_folder(path: Path) -> Path:
    """The folder whose ``figures.json`` describes the PNG at ``path``."""
    for folder in (GALLERY_DIR, SNIPPET_FIGURES_DIR):
        if path.is_relative_to(folder):
            return folder
    return README_DIR


def _drawn_pngs(folder: Path) -> list[Path]:
    """The PNGs a folder of generated pictures holds (the README's: one level)."""
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.png") if folder == README_DIR else folder.rglob("*.png"))


def build(runs: dict[str, SnippetRun] | None = None, verbose: bool = False) -> Build:
    """Renders every page, picture and ``figures.json`` in memory (writes nothing)."""
    if runs is None:
        runs = run_all_snippets(verbose)
    pages = {}
    for path in page_paths():
        text = path.read_text(encoding="utf-8")
        page = path.relative_to(DOCS).as_posix()
        pages[path] = render_page(text, page, runs)
    pngs: dict[Path, bytes] = {}
    figures: dict[Path, dict[str, Any]] = {}
    gallery = gallery_figures()
    figures[GALLERY_DIR / FIGURES_JSON] = {name: data for name, (_, data) in gallery.items()}
    pngs |= {GALLERY_DIR / name: png for name, (png, _) in gallery.items()}
    snippet_data = {}
    for rel, run in runs.items():
        for i, (png, data) in enumerate(run.figures, 1):
            name = snippet_figure_name(rel, i)
            pngs[SNIPPET_FIGURES_DIR / name] = png
            snippet_data[name] = data
    figures[SNIPPET_FIGURES_DIR / FIGURES_JSON] = snippet_data
    readme = readme_figures()
    figures[README_DIR / FIGURES_JSON] = {name: data for name, (_, data) in readme.items()}
    pngs |= {README_DIR / name: png for name, (png, _) in readme.items()}
    return Build(pages, pngs, figures)


def dump_figures(data: dict[str, Any]) -> str:
    """``figures.json`` text: sorted keys, floats to 7 significant digits."""

    def rounded(x: Any) -> Any:
        if isinstance(x, float):
            return float(f"{x:.7g}") if math.isfinite(x) else x
        if isinstance(x, dict):
            return {k: rounded(v) for k, v in x.items()}
        if isinstance(x, list):
            return [rounded(v) for v in x]
        return x

    return json.dumps(rounded(data), indent=1, sort_keys=True) + "\n"


def stale(result: Build) -> list[str]:
    """One line per committed file that differs from ``result`` (empty: all fresh)."""
    problems = []
    for path, text in result.pages.items():
        committed = path.read_text(encoding="utf-8")
        if not same_text(committed, text):
            where = path.relative_to(ROOT).as_posix()
            problems.append(f"{where} is out of date ({first_difference(committed, text)})")
    for path, data in result.figures.items():
        where = path.relative_to(ROOT).as_posix()
        committed = json.loads(path.read_text()) if path.is_file() else {}
        fresh = json.loads(dump_figures(data))
        for name in sorted(set(committed) | set(fresh)):
            if name not in fresh:
                problems.append(f"{where}: {name} is no longer drawn")
            elif name not in committed or not (path.parent / name).is_file():
                problems.append(f"{path.parent.relative_to(ROOT).as_posix()}/{name} is missing")
            elif not same_figure_data(committed[name], fresh[name]):
                problems.append(f"{path.parent.relative_to(ROOT).as_posix()}/{name} is out of date")
    for folder in (GALLERY_DIR, SNIPPET_FIGURES_DIR, README_DIR):
        for png in _drawn_pngs(folder):
            if png not in result.pngs:
                problems.append(f"{png.relative_to(ROOT).as_posix()} is no longer drawn")
    return problems


def write(result: Build) -> list[Path]:
    """Writes what changed; removes PNGs nothing draws any more. Returns the paths."""
    changed = []
    for path, text in result.pages.items():
        # Keep a page whose only changes are durations; any other number is
        # written as this machine computes it.
        old = path.read_text(encoding="utf-8")
        if _without_durations(old) != _without_durations(text):
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for folder in (GALLERY_DIR, SNIPPET_FIGURES_DIR, README_DIR):
        for png in _drawn_pngs(folder):
            if png not in result.pngs:
                png.unlink()
                changed.append(png)
    old_data: dict[Path, dict[str, Any]] = {}
    for path in result.figures:
        old_data[path] = json.loads(path.read_text()) if path.is_file() else {}
    for path, png in result.pngs.items():
        # Redraw a PNG only when what it shows changed, to figures.json's 7
        # digits (PNG bytes differ between matplotlib versions; rewriting them
        # all would churn every commit).
        folder = _figure_folder(path)
        name = path.relative_to(folder).as_posix()
        fresh = json.loads(dump_figures({name: result.figures[folder / FIGURES_JSON][name]}))
        old = old_data[folder / FIGURES_JSON].get(name)
        if path.is_file() and old == fresh[name]:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        changed.append(path)
    for path, data in result.figures.items():
        text = dump_figures(data)
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if anything is out of date"
    )
    parser.add_argument(
        "--redraw", action="store_true", help="rewrite every PNG, even if its data is unchanged"
    )
    args = parser.parse_args(argv)
    runs = run_all_snippets(verbose=True)
    if args.check:
        result = build(settle_chaotic(runs))
        problems = stale(result)
        for p in problems:
            print(p)
        if problems:
            print(f"run: {COMMAND}")
        return 1 if problems else 0
    result = build(runs)
    if args.redraw:
        for path in result.pngs:
            if path.is_file():
                path.unlink()
    changed = write(result)
    for path in changed:
        print(f"wrote {path.relative_to(ROOT).as_posix()}")
    print(f"{len(changed)} files changed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
