"""mkdocs hook: the API reference directives, and nothing that runs code.

Everything the pages show that comes from running code (snippet code and
output, their figures, the migration tables, the gallery, the example scripts)
is committed in the pages by ``python docs/build_pages.py``, between marker
comments, so that the pages read fully on GitHub; this hook only drops those
marker comments from the built site. ``tests/test_docs.py`` fails when a
committed page is out of date.

``<!-- api: lrjax.cosine lrjax.one_cycle -->`` becomes the mkdocstrings
directives documenting those names under their public names; the summary that
``build_pages.py`` commits after it for GitHub readers (up to ``<!-- /api -->``)
is dropped from the site.
"""

from __future__ import annotations

import re
from typing import Any

from mkdocs.structure.files import Files

_API = re.compile(r"^<!-- api: (?P<names>[\w. ]+) -->$", re.MULTILINE)
#: An ``api:`` marker with its committed summary, up to ``<!-- /api -->``.
_API_SUMMARY = re.compile(r"^(<!-- api: [\w. ]+ -->)$.*?^<!-- /api -->$\n?", re.M | re.S)
#: The markers ``docs/build_pages.py`` writes around generated blocks.
_GENERATED_MARKER = re.compile(
    r"^<!-- /?(?:snippet|example|migration|gallery)(?:: [\w./-]+)? -->\n", re.MULTILINE
)


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


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    markdown = _API_SUMMARY.sub(lambda m: m.group(1) + "\n", markdown)
    markdown = _GENERATED_MARKER.sub("", markdown)
    return _API.sub(lambda m: _api_markdown(m.group("names")), markdown)
