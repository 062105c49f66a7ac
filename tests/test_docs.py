"""The docs: committed pages fresh, strict build, gallery, migration, API, README.

Every snippet's code, printed output and figures, the migration tables, the
gallery and the example scripts are committed in the pages by
``python docs/build_pages.py``. :func:`test_committed_docs_are_fresh` runs every
snippet once and fails when a committed page, output or picture differs from
what the code produces now, by more than float results differ between CPUs
(printed numbers within ``build_pages.TEXT_RTOL``, pictures' data within
``FIGURE_RTOL``; chaotic outputs, listed in ``CHAOTIC_OUTPUT`` and
``CHAOTIC_FIGURES``, by their form only).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lrjax

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


gallery = _load("lrjax_docs_gallery_test", DOCS / "gen_gallery.py")
migration = _load("lrjax_docs_migration_test", DOCS / "migration_table.py")
hook = _load("lrjax_docs_hook_test", DOCS / "hooks" / "lrjax_docs.py")
pages = _load("lrjax_docs_build_pages_test", DOCS / "build_pages.py")


def _pages() -> dict[str, str]:
    return {p.relative_to(DOCS).as_posix(): p.read_text() for p in DOCS.rglob("*.md")}


# ------------------------------------------------------------------ the build


def test_mkdocs_build_strict(tmp_path):
    """``mkdocs build --strict`` passes, and the built site holds what it should.

    One test, so that under ``pytest -n 2`` the site is built once.
    """
    import html as htmllib
    import os

    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"

    # Every gallery picture (committed under docs/assets/gallery) on the page.
    html = (site / "gallery" / "index.html").read_text()
    for entry in gallery.GALLERY:
        png = site / "assets" / "gallery" / f"{entry.slug}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"assets/gallery/{entry.slug}.png" in html

    # Each snippet's code, and the output block the build captured, on its page.
    for rel, page in _snippet_refs().items():
        where = Path(page).parent if Path(page).name == "index.md" else Path(page).with_suffix("")
        raw = (site / where / "index.html").read_text()
        text = htmllib.unescape(re.sub(r"<[^>]+>", "", raw))
        code = (SNIPPETS / rel).read_text()
        last = [ln for ln in code.splitlines() if ln.strip()][-1].strip()
        assert last in text, f"{rel}: code not on {page}"
        if "print(" in code or "main([" in code:
            assert f"docs/snippets/{rel}" in text and "Output" in text, f"{rel}: no output"
        assert "<!-- snippet:" not in raw and "<!-- /snippet" not in raw

    # Every example's code on the examples page (pymdownx.snippets includes the file).
    raw = (site / "examples" / "index.html").read_text()
    text = htmllib.unescape(re.sub(r"<[^>]+>", "", raw))
    assert "--8<--" not in text and "<!-- example:" not in raw
    for script in sorted((ROOT / "examples").glob("*.py")):
        first = script.read_text().splitlines()[0].strip('"')
        assert f"examples/{script.name}" in text and first in text, script.name

    # Every mkdocstrings directive rendered.
    for page in (DOCS / "api").glob("*.md"):
        html = (site / "api" / page.stem / "index.html").read_text()
        assert ":::" not in html and "<!-- api:" not in html, page
        assert "<!-- /api" not in html and "</code></strong><code>(" not in html, page


# ------------------------------------------------------- committed, and fresh


def test_committed_docs_are_fresh():
    """Every page, snippet output and picture is what ``docs/build_pages.py`` makes now.

    One test, so that the snippets run once per session (under ``-n 2`` too).
    """
    runs = pages.settle_chaotic(pages.run_all_snippets())
    result = pages.build(runs)
    problems = pages.stale(result)
    # Each snippet's printed output, against the Output block on its page.
    for rel, page in _snippet_refs().items():
        committed = pages.committed_output(rel, (DOCS / page).read_text())
        if not pages.same_text(committed, runs[rel].output):
            diff = pages.first_difference(committed, runs[rel].output)
            problems.append(
                f"docs/snippets/{rel} prints other output than docs/{page} shows ({diff})"
            )
    assert not problems, "\n".join(f"{p}: run {pages.COMMAND}" for p in problems)


def test_every_generated_block_is_closed_and_filled():
    """No page holds an opening marker the script has not filled in yet."""
    for page, text in _pages().items():
        opened = re.findall(r"^<!-- (snippet|example|migration|gallery|api)\b.*-->$", text, re.M)
        closed = re.findall(r"^<!-- /(snippet|example|migration|gallery|api) -->$", text, re.M)
        assert opened == closed, f"docs/{page}: unbuilt blocks; run {pages.COMMAND}"


def test_a_stale_page_or_picture_is_reported(tmp_path):
    page = DOCS / "migration.md"
    fresh = page.read_text()
    gallery_json = pages.GALLERY_DIR / pages.FIGURES_JSON
    data = json.loads(gallery_json.read_text())
    data["constant.png"]["axes"][0]["lines"][0]["y"]["mean"] *= 1.01  # > FIGURE_RTOL
    snippets_json = pages.SNIPPET_FIGURES_DIR / pages.FIGURES_JSON
    snippet_data = json.loads(snippets_json.read_text())
    readme_json = pages.README_DIR / pages.FIGURES_JSON
    readme_data = json.loads(readme_json.read_text())
    result = pages.Build(
        pages={page: fresh.replace("StepLR(opt, step_size=30", "StepLR(opt, step_size=31")},
        pngs={pages.GALLERY_DIR / n: b"" for n in data}
        | {pages.SNIPPET_FIGURES_DIR / n: b"" for n in snippet_data}
        | {pages.README_DIR / n: b"" for n in readme_data},
        figures={gallery_json: data, snippets_json: snippet_data, readme_json: readme_data},
    )
    problems = pages.stale(result)
    n = next(i for i, ln in enumerate(fresh.splitlines(), 1) if "StepLR(opt, step_size=30" in ln)
    line = fresh.splitlines()[n - 1]
    new = line.replace("step_size=30", "step_size=31", 1)
    assert problems == [
        f"docs/migration.md is out of date (line {n}: committed {line!r}, now {new!r})",
        "docs/assets/gallery/constant.png is out of date",
    ], problems


def test_render_page_fills_new_markers_and_rewrites_old_blocks():
    runs = {"a/b.py": pages.SnippetRun("print(1)\n", "1", [(b"png", {})])}
    text = "# T\n\n<!-- snippet: a/b.py -->\n\nafter\n"
    once = pages.render_page(text, "guide/page.md", runs)
    assert once == (
        "# T\n\n<!-- snippet: a/b.py -->\n\n"
        '```python title="docs/snippets/a/b.py"\nprint(1)\n```\n\n'
        '```text title="Output"\n1\n```\n\n'
        "![b-1.png](../assets/snippets/a/b-1.png)\n\n<!-- /snippet -->\n\nafter\n"
    )
    assert pages.render_page(once, "guide/page.md", runs) == once  # idempotent
    runs["a/b.py"].output = "2"
    assert '```text title="Output"\n2\n```' in pages.render_page(once, "guide/page.md", runs)
    with pytest.raises(ValueError, match="closes a snippet block"):
        pages.render_page("<!-- snippet: a/b.py -->\nx\n<!-- /gallery -->\n", "p.md", runs)
    with pytest.raises(ValueError, match="without an opening marker"):
        pages.render_page("<!-- /snippet -->\n", "p.md", runs)
    with pytest.raises(ValueError, match=r"no snippet docs/snippets/c\.py"):
        pages.render_page("<!-- snippet: c.py -->\n", "p.md", runs)
    with pytest.raises(ValueError, match=r"no example script examples/nope\.py"):
        pages.render_page("<!-- example: examples/nope.py -->\n", "p.md", runs)


def test_same_text_allows_one_unit_in_the_last_printed_digit_only():
    assert pages.same_text("loss 0.0707 at 3 steps", "loss 0.0708 at 3 steps")
    assert pages.same_text("rate 1.23e-05", "rate 1.24e-05")
    assert not pages.same_text("loss 0.0707", "loss 0.0709")
    assert not pages.same_text("at 3 steps", "at 4 steps")  # integers are exact
    assert not pages.same_text("loss 0.0707 good", "loss 0.0707 slow")
    assert not pages.same_text("a 1.0", "a 1.0 2.0")
    assert pages.same_text("on digits; 1.5 s", "on digits; 13.2 s")  # wall-clock time
    assert not pages.same_text("on digits; 1.5 s", "on digits; 1.5 ms")
    # Many digits: within TEXT_RTOL (float results differ between CPUs).
    assert pages.TEXT_RTOL == 2e-3
    assert pages.same_text("loss 0.1234567", "loss 0.1235678")  # 9e-4
    assert not pages.same_text("loss 0.1234567", "loss 0.1238567")  # 3.2e-3


def test_chaotic_lines_are_compared_by_form():
    best = "best: {'lr': 0.0938, 'pct_start': 0.5, 'weight_decay': 0.000679}"
    other = "best: {'lr': 0.017, 'pct_start': 0.399, 'weight_decay': 0.0012}"
    assert pages.same_form(best, other, 1e-5, 1.0)
    assert not pages.same_form(best, other.replace("0.017", "3.5"), 1e-5, 1.0)  # out of range
    assert not pages.same_form(best, other.replace("0.017", "nan"), 1e-5, 1.0)
    assert not pages.same_form(best, other.replace("pct_start", "pct_end"), 1e-5, 1.0)
    row = "constant: B=32, lr=0.3                         645    0.1991    0.947"
    assert pages.same_form(row, row.replace("0.1991", "0.2930"), 0.0, 2.31)
    assert not pages.same_form(row, row.replace("645", "646"), 0.0, 2.31)  # integers exact
    # Every listed snippet and picture exists, and every listed line is printed.
    for rel, lines in pages.CHAOTIC_OUTPUT.items():
        page = next(t for t in _pages().values() if f"<!-- snippet: {rel} -->" in t)
        printed = pages.committed_output(rel, page).splitlines()
        for prefix, (low, high) in lines.items():
            line = next(ln for ln in printed if ln.startswith(prefix))
            assert pages.same_form(line, line, low, high), (rel, line)
    committed = json.loads((pages.SNIPPET_FIGURES_DIR / pages.FIGURES_JSON).read_text())
    assert set(pages.CHAOTIC_FIGURES) <= set(committed)


def test_settle_chaotic_keeps_the_committed_form_only():
    rel, name = "guide/tune.py", "guide/tune-1.png"
    page = next(t for t in _pages().values() if f"<!-- snippet: {rel} -->" in t)
    committed = pages.committed_output(rel, page)
    data = json.loads((pages.SNIPPET_FIGURES_DIR / pages.FIGURES_JSON).read_text())[name]
    lines = committed.splitlines()
    best = next(i for i, ln in enumerate(lines) if ln.startswith("best:"))
    other = "best: {'lr': 0.017, 'pct_start': 0.399, 'weight_decay': 0.0012}"

    def scaled(x):  # other values, the same form
        if isinstance(x, dict):
            return {k: scaled(v) for k, v in x.items()}
        if isinstance(x, list):
            return [scaled(v) for v in x]
        return x * 1.5 if isinstance(x, float) else x

    moved = scaled(data)
    assert moved != data

    def settle(output, figure):
        run = pages.SnippetRun("code\n", output, [(b"", figure)])
        return pages.settle_chaotic({rel: run})[rel]

    chaotic = "\n".join([*lines[:best], other, *lines[best + 1 :]])
    got = settle(chaotic, moved)
    assert got.output == committed and got.figures[0][1] == data
    # A changed line that is not listed, or a picture of another form, stays.
    unlisted = committed.replace("random search, 21 settings:", "random search, 21 settings: ")
    assert unlisted != committed and settle(unlisted, data).output == unlisted
    fewer = json.loads(json.dumps(data))
    fewer["axes"][0]["lines"].pop()
    assert settle(committed, fewer).figures[0][1] == fewer


def test_figure_data_sees_what_is_plotted():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def draw(ys, label="a"):
        fig, ax = plt.subplots()
        ax.plot(np.arange(len(ys)), ys, label=label)
        ax.legend()
        ax.set_title("t")
        data = pages.figure_data(fig)
        plt.close(fig)
        return data

    ys = np.linspace(1.0, 0.0, 50)
    base = draw(ys)
    assert pages.same_figure_data(base, draw(ys * (1 + 1e-7)))  # last-bit noise
    assert pages.same_figure_data(base, json.loads(pages.dump_figures(base)))
    bumped = ys.copy()
    bumped[17] += 0.5  # one point the samples skip: a spike (seen through the mean)
    assert not pages.same_figure_data(base, draw(bumped))
    assert not pages.same_figure_data(base, draw(ys, label="b"))
    assert not pages.same_figure_data(base, draw(ys[:-1]))


# -------------------------------------------------------------------- gallery


def _static_choices() -> dict[str, tuple]:
    import importlib

    cyclic = importlib.import_module("lrjax.schedules._cyclic")
    wsd = importlib.import_module("lrjax.schedules._wsd")
    return {
        "mode": cyclic.CYCLIC_MODES,
        "anneal": cyclic.ANNEALS,
        "convention": cyclic.CONVENTIONS,
        "decay_shape": wsd.DECAY_SHAPES,
        "at_boundary": ("new", "old"),
    }


def test_gallery_covers_catalogue_compositions_and_every_mode():
    from lrjax.schedules import CATALOGUE, COMPOSITIONS

    built = [gallery.build(e) for e in gallery.GALLERY]
    families = {e.family for e in gallery.GALLERY}
    assert set(CATALOGUE) <= families
    assert set(COMPOSITIONS) <= families
    for e, s in zip(gallery.GALLERY, built):
        assert isinstance(s, lrjax.Schedule), e.slug
        assert s.name == e.family, (e.slug, s.name)
    choices = _static_choices()
    for name, cls in CATALOGUE.items():
        mine = [s for s in built if type(s) is cls]
        for field in cls._static:
            default = next(f.default for f in dataclasses.fields(cls) if f.name == field)
            values = (False, True) if isinstance(default, bool) else choices.get(field)
            assert values is not None, f"no known choices for {name}.{field}"
            shown = {getattr(s, field) for s in mine}
            assert set(values) <= shown, (
                f"gallery lacks {name}({field}=...) for {set(values) - shown}"
            )


def test_gallery_pictures_are_the_real_values():
    """The curve in a picture is the schedule's own output."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entry = next(e for e in gallery.GALLERY if e.slug == "cosine_restarts-mult")
    captured = {}
    orig = plt.Axes.plot

    def spy(self, *args, **kwargs):
        if len(args) >= 2 and "ys" not in captured:
            captured["ys"] = np.asarray(args[1])
        return orig(self, *args, **kwargs)

    plt.Axes.plot = spy
    try:
        gallery.render(entry)
    finally:
        plt.Axes.plot = orig
    s = gallery.build(entry)
    np.testing.assert_allclose(captured["ys"], [float(s(t)) for t in range(entry.steps)], rtol=1e-6)


# ------------------------------------------------------------------ migration

CHECKED = [r for lib in migration.LIBS for r in migration.rows(lib) if r.check]


@pytest.mark.parametrize("row", CHECKED, ids=[f"{r.lib}-{r.name}" for r in CHECKED])
def test_migration_row_matches_the_real_library(row):
    """Every row gives the library's rates (for early stopping, its stop decisions)."""
    ref = migration.reference_rates(row)
    ours = migration.lrjax_rates(row)
    assert ref.shape == ours.shape == (row.steps,)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-8, err_msg=row.source)


def test_migration_tables_list_every_torch_scheduler_and_keras_and_optax_schedule():
    import os

    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    import optax
    from torch.optim import lr_scheduler

    names = {lib: {r.name.split(" ")[0] for r in migration.rows(lib)} for lib in migration.LIBS}
    torch_classes = {
        n
        for n, o in vars(lr_scheduler).items()
        if inspect.isclass(o) and o.__module__ == lr_scheduler.__name__ and not n.startswith("_")
    }
    assert torch_classes <= names["torch"], torch_classes - names["torch"]
    keras_classes = {
        n for n, o in vars(keras.optimizers.schedules).items() if inspect.isclass(o)
    } - {"serialize", "deserialize"}
    assert keras_classes <= names["keras"], keras_classes - names["keras"]
    optax_schedules = {
        n
        for n in dir(optax.schedules)
        if not n.startswith("_")
        and (n.endswith("_schedule") or n in ("exponential_decay", "join_schedules"))
    }
    assert optax_schedules <= names["optax"], optax_schedules - names["optax"]


def test_migration_markdown_renders_every_row():
    for lib in migration.LIBS:
        table = migration.markdown(lib)
        rows = migration.rows(lib)
        assert table.count("\n") == len(rows) + 2
        for r in rows:
            assert r.name in table
    with pytest.raises(ValueError, match="lib"):
        migration.rows("jaxopt")


# ------------------------------------------------------------------------ api

_API = re.compile(r"^<!-- api: (?P<names>[\w. ]+) -->$", re.MULTILINE)


def _documented() -> set[int]:
    ids = set()
    for page in (DOCS / "api").glob("*.md"):
        for m in _API.finditer(page.read_text()):
            for name in m.group("names").split():
                ids.add(id(hook.resolve(name)))
    return ids


def _public(module) -> dict[str, object]:
    """``__all__``, or else the public names the module defines itself."""
    if hasattr(module, "__all__"):
        return {n: getattr(module, n) for n in module.__all__}
    return {
        n: v
        for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
    }


def _init_names() -> list[str]:
    """The names ``lrjax/__init__.py`` binds (not submodules imported elsewhere)."""
    import ast

    tree = ast.parse((ROOT / "lrjax" / "__init__.py").read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names += [a.asname or a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names += [(a.asname or a.name).split(".")[0] for a in node.names]
    return [n for n in names if not n.startswith("_")]


def test_api_pages_document_every_public_name():
    documented = _documented()
    missing = []
    for name in _init_names():
        obj = getattr(lrjax, name)
        members = _public(obj).items() if inspect.ismodule(obj) else [(name, obj)]
        where = obj.__name__ if inspect.ismodule(obj) else "lrjax"
        for member, value in members:
            if inspect.ismodule(value):
                continue
            if member.isupper() and isinstance(value, (str, int, float, dict, tuple)):
                continue  # constants: described in the page text
            if id(value) not in documented:
                missing.append(f"{where}.{member}")
    assert not missing, f"no API entry for {missing}"


# ---------------------------------------------------------------------- names

_FENCE = re.compile(r"^(`{3,})[^\n]*\n(.*?)^\1\s*$", re.S | re.M)
_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_DOTTED = re.compile(r"(?<![\w.])lrjax(?:\.[A-Za-z_]\w*)+")
_IMPORTED = re.compile(r"(?:^|\n)[ \t]*(?:from[ \t]+|import[ \t]+(?:[\w.]+[ \t]*,[ \t]*)*)$")


def _code_of(text: str) -> list[str]:
    """The code blocks, the inline code spans and the ``api:`` markers of a page."""
    blocks = [m.group(2) for m in _FENCE.finditer(text)]
    prose = _FENCE.sub("", text)
    spans = [m.group(2) for m in _SPAN.finditer(prose)]
    return blocks + spans + [m.group("names") for m in _API.finditer(prose)]


def documented_names() -> dict[str, set[str]]:
    """``{name: pages}`` for every dotted ``lrjax.X...`` name the docs show as code.

    Names right after ``from`` / ``import`` are module paths for the import
    system and are returned with the prefix ``import:``.
    """
    found: dict[str, set[str]] = {}
    sources = {f"docs/{p}": t for p, t in _pages().items()}
    sources["README.md"] = (ROOT / "README.md").read_text()
    for where, text in sources.items():
        for code in _code_of(text):
            for m in _DOTTED.finditer(code):
                imported = _IMPORTED.search(code[: m.start()]) is not None
                name = ("import:" if imported else "") + m.group(0)
                found.setdefault(name, set()).add(where)
    return found


def _resolves(name: str) -> bool:
    import importlib

    if name.startswith("import:"):
        try:
            importlib.import_module(name.removeprefix("import:"))
        except ImportError:
            return False
        return True
    obj = lrjax  # attribute access after ``import lrjax``, nothing imported on the side
    for part in name.split(".")[1:]:
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def test_every_documented_name_resolves_after_import_lrjax():
    """``lrjax.X.Y`` in any page's code (and README's) is reachable as an attribute.

    Run in a fresh interpreter: other tests import submodules (``lrjax.cli``,
    ``lrjax.plotting``), which would make their names attributes of ``lrjax``.
    """
    names = documented_names()
    assert {"lrjax.cosine", "lrjax.Thresholds", "lrjax.plotting.plot_schedule"} <= set(names)
    code = (
        "import json\n"
        "import lrjax\n"
        f"{inspect.getsource(_resolves)}\n"
        f"names = {sorted(names)!r}\n"
        "print(json.dumps([n for n in names if not _resolves(n)]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr
    missing = json.loads(proc.stdout.strip().splitlines()[-1])
    lines = [f"{n} (in {', '.join(sorted(names[n]))})" for n in missing]
    assert not missing, "documented names that do not resolve after `import lrjax`:\n" + "\n".join(
        lines
    )


def test_name_walker_finds_spans_blocks_markers_and_imports():
    text = (
        "Use `lrjax.cosine(0.1, 10)` or ``lrjax.schedules.CATALOGUE``; not lrjax.prose.\n\n"
        "```python\nfrom lrjax.cli import main\nimport lrjax.data, lrjax.callbacks\n"
        "x = lrjax.data.make_demo()  # see lrjax.transforms\n```\n\n"
        "<!-- api: lrjax.Schedule lrjax.plotting.plot_schedule -->\n"
    )
    found = {
        m.group(0) if not _IMPORTED.search(code[: m.start()]) else "import:" + m.group(0)
        for code in _code_of(text)
        for m in _DOTTED.finditer(code)
    }
    assert found == {
        "lrjax.cosine",
        "lrjax.schedules.CATALOGUE",
        "import:lrjax.cli",
        "import:lrjax.data",
        "import:lrjax.callbacks",
        "lrjax.data.make_demo",
        "lrjax.transforms",
        "lrjax.Schedule",
        "lrjax.plotting.plot_schedule",
    }
    assert not _resolves("lrjax.no_such_name") and _resolves("lrjax.schedules.CATALOGUE")
    assert _resolves("import:lrjax.cli") and not _resolves("import:lrjax.nope")


def test_api_directive_points_at_the_defining_class():
    text = hook.api_directive("lrjax.cosine")
    assert text.startswith("::: lrjax.schedules._cosine.cosine\n")
    assert 'heading: "lrjax.cosine"' in text


# ------------------------------------------------------------------- snippets


def _snippet_refs() -> dict[str, str]:
    pattern = re.compile(r"^<!-- snippet: (?P<path>[\w./-]+\.py) -->$", re.MULTILINE)
    refs = {}
    for page, text in _pages().items():
        for m in pattern.finditer(text):
            refs[m.group("path")] = page
    return refs


def test_every_snippet_is_on_a_page_and_every_reference_exists():
    files = {p.relative_to(SNIPPETS).as_posix() for p in SNIPPETS.rglob("*.py")}
    refs = set(_snippet_refs())
    assert files == refs, f"unreferenced: {files - refs}; missing files: {refs - files}"


# --------------------------------------------------------------------- README


def test_readme_links_and_pictures_exist():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert local, "README links into the docs"
    for t in local:
        assert (ROOT / t).exists(), t
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    assert [ln for ln in block.splitlines() if ln.strip()] == [
        'pip install -e ".[demo]" && lrjax find',
        'pip install -e ".[test]" && python -m pytest -q -n 2',
    ]
