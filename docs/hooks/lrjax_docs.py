"""mkdocs hook: everything the docs show that comes from running code.

- ``<!-- gallery -->`` becomes the schedule gallery; its PNGs are drawn from the
  real schedules by ``docs/gen_gallery.py`` at build time.
- ``<!-- migration: torch -->`` (``keras``, ``optax``) becomes a migration table
  from ``docs/migration_table.py``, whose rows ``tests/test_docs.py`` checks
  numerically against the real libraries.
- ``<!-- snippet: guide/foo.py -->`` becomes the code of ``docs/snippets/guide/foo.py``,
  the output it printed when it ran during this build, and every matplotlib
  figure it left open. Snippets run once per build, in this process, so what the
  page shows is what the code does now and can never go stale; a snippet that
  raises fails the build.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import posixpath
import re
import runpy
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.plugins.lrjax_docs")
DOCS = Path(__file__).resolve().parent.parent
SNIPPETS = DOCS / "snippets"

_SNIPPET = re.compile(r"^<!-- snippet: (?P<path>[\w./-]+\.py) -->$", re.MULTILINE)
_GALLERY = "<!-- gallery -->"
_MIGRATION = re.compile(r"^<!-- migration: (?P<lib>\w+) -->$", re.MULTILINE)
_API = re.compile(r"^<!-- api: (?P<names>[\w. ]+) -->$", re.MULTILINE)


class _Run:
    """The captured result of running one snippet."""

    def __init__(self, code: str, output: str, figures: list[str], seconds: float):
        self.code = code
        self.output = output
        self.figures = figures  # site paths of the PNGs, e.g. "snippets/guide/foo-1.png"
        self.seconds = seconds


class _State:
    """Per-build results (reset in ``on_config``)."""

    def __init__(self) -> None:
        self.runs: dict[str, _Run] = {}


_state = _State()


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------- snippets


def run_snippet(path: Path) -> tuple[str, list[bytes]]:
    """Runs a snippet as ``__main__`` in a scratch directory.

    Returns what it printed and the PNG bytes of every figure it left open.
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
    pngs = []
    for num in plt.get_fignums():
        buf = io.BytesIO()
        plt.figure(num).savefig(buf, format="png", dpi=110)
        pngs.append(buf.getvalue())
    plt.close("all")
    return out.getvalue(), pngs


def _run_all_snippets(config: Any, files: Files) -> None:
    for path in sorted(SNIPPETS.rglob("*.py")):
        rel = path.relative_to(SNIPPETS).as_posix()
        start = time.perf_counter()
        try:
            output, pngs = run_snippet(path)
        except BaseException as e:  # a snippet that fails must fail the build
            tb = traceback.format_exc()
            raise PluginError(f"docs snippet {rel} failed: {e!r}\n{tb}") from e
        figures = []
        for i, png in enumerate(pngs, 1):
            uri = f"snippets/{rel[:-3]}-{i}.png"
            files.append(File.generated(config, uri, content=png))
            figures.append(uri)
        code = path.read_text(encoding="utf-8").rstrip() + "\n"
        _state.runs[rel] = _Run(code, output.rstrip(), figures, time.perf_counter() - start)


def _snippet_markdown(rel: str, page_uri: str) -> str:
    run = _state.runs.get(rel)
    if run is None:
        raise PluginError(f"{page_uri}: no snippet docs/snippets/{rel}")
    parts = [f'```python title="docs/snippets/{rel}"\n{run.code}```\n']
    if run.output:
        parts.append(f'```text title="Output"\n{run.output}\n```\n')
    page_dir = posixpath.dirname(page_uri)
    for uri in run.figures:
        parts.append(f"![{posixpath.basename(uri)}]({posixpath.relpath(uri, page_dir or '.')})\n")
    return "\n".join(parts)


# ---------------------------------------------------------------------- api


def resolve(name: str) -> Any:
    """The object a public dotted name (``lrjax.cosine``) refers to at runtime."""
    import importlib

    module, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return importlib.import_module(name)


def api_directive(name: str) -> str:
    """The mkdocstrings block documenting ``name`` under its public name.

    The block points at the object's defining module (``lrjax.cosine`` is the class
    ``lrjax.schedules._cosine.cosine``, not the module of the same name) and keeps
    the public name as the heading. Schedule classes list no members: their
    fields are the signature and the shared methods are documented on
    ``Schedule``.
    """
    import inspect

    from lrjax.schedules import Schedule

    obj = resolve(name)
    if inspect.ismodule(obj):
        return f"::: {name}\n    options:\n      members: false\n"
    path = f"{obj.__module__}.{obj.__qualname__}"
    lines = [f"::: {path}", "    options:", f'      heading: "{name}"']
    if obj is Schedule:
        lines.append('      members: ["__call__", "to_dict"]')
    elif inspect.isclass(obj) and issubclass(obj, Schedule):
        lines.append("      members: false")
    return "\n".join(lines) + "\n"


def _api_markdown(names: str) -> str:
    return "\n".join(api_directive(n) for n in names.split())


# -------------------------------------------------------------------- hooks


def on_config(config: Any) -> Any:
    global _state
    _state = _State()
    os.environ.setdefault("MPLBACKEND", "Agg")
    return config


def on_files(files: Files, config: Any) -> Files:
    gallery = _load("lrjax_docs_gallery", DOCS / "gen_gallery.py")
    for uri, png in gallery.render_all().items():
        files.append(File.generated(config, uri, content=png))
    _run_all_snippets(config, files)
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    uri = page.file.src_uri
    if _GALLERY in markdown:
        gallery = sys.modules["lrjax_docs_gallery"]
        markdown = markdown.replace(_GALLERY, gallery.markdown())
    if _MIGRATION.search(markdown):
        table = _load("lrjax_docs_migration", DOCS / "migration_table.py")
        markdown = _MIGRATION.sub(lambda m: table.markdown(m.group("lib")), markdown)
    markdown = _API.sub(lambda m: _api_markdown(m.group("names")), markdown)
    return _SNIPPET.sub(lambda m: _snippet_markdown(m.group("path"), uri), markdown)


def on_post_build(config: Any) -> None:
    used = sorted(_state.runs, key=lambda r: -_state.runs[r].seconds)
    if used:
        total = sum(r.seconds for r in _state.runs.values())
        slowest = ", ".join(f"{r} {_state.runs[r].seconds:.1f}s" for r in used[:3])
        log.info(f"ran {len(used)} docs snippets in {total:.1f}s (slowest: {slowest})")
