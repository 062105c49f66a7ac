"""The docs site: strict build, gallery, migration tables, API coverage, README.

The build runs every snippet of the guide (the hook in ``docs/hooks`` executes
them and puts their real output on the page), so a guide snippet that breaks or
whose output no longer appears fails here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
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

    # Every gallery picture, drawn at build time.
    html = (site / "gallery" / "index.html").read_text()
    for entry in gallery.GALLERY:
        png = site / "gallery" / f"{entry.slug}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"{entry.slug}.png" in html

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
        assert "<!-- snippet:" not in raw

    # Every example's code on the examples page (pymdownx.snippets includes the file).
    raw = (site / "examples" / "index.html").read_text()
    text = htmllib.unescape(re.sub(r"<[^>]+>", "", raw))
    assert "--8<--" not in text
    for script in sorted((ROOT / "examples").glob("*.py")):
        first = script.read_text().splitlines()[0].strip('"')
        assert f"examples/{script.name}" in text and first in text, script.name

    # Every mkdocstrings directive rendered.
    for page in (DOCS / "api").glob("*.md"):
        html = (site / "api" / page.stem / "index.html").read_text()
        assert ":::" not in html and "<!-- api:" not in html, page


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
