"""The Markdown GitHub renders holds no syntax that only a docs site understands.

README.md, docs/*.md, docs/api/*.md and benchmarks/README.md are read on
GitHub as committed. There, reST roles (``:func:`x```) show as literal text,
mkdocs admonitions (``!!! note``) as a stray paragraph, and links to a built
site's ``.html`` pages or to anchors that only mkdocstrings makes
(``api/schedules.md#lrjax.schedules._cyclic.cosine``) lead nowhere. Code blocks
are skipped: Python docstrings inside an example may use reST.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / "benchmarks" / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "docs" / "api").glob("*.md"),
    ]
)

REST_ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|obj|exc|ref|doc|py:\w+):`")
ADMONITION = re.compile(r"^\s*(?:!!!|\?\?\?\+?)\s*\w+")
#: ``[text](target)``, not images' alt text that happens to hold brackets.
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose_lines(text: str, strip_code: bool = True) -> list[tuple[int, str]]:
    """``(line number, line)`` outside fenced code blocks, inline code removed."""
    out, fenced = [], False
    for i, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append((i, re.sub(r"``[^`]*``|`[^`]*`", "``", line) if strip_code else line))
    return out


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to ``-``."""
    text = re.sub(r"`|\*\*|__", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a page, with GitHub's ``-1``, ``-2`` for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8"), strip_code=False):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = github_slug(m.group(1))
        n = seen.get(slug, 0)
        found.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    found.update(re.findall(r'<a (?:name|id)="([^"]+)"', path.read_text(encoding="utf-8")))
    return found


def problems(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found = []
    for i, line in prose_lines(text):
        where = f"{path.relative_to(ROOT)}:{i}"
        if REST_ROLE.search(line):
            found.append(f"{where}: reST role {REST_ROLE.search(line).group(0)!r}")
        if ADMONITION.match(line):
            found.append(f"{where}: mkdocs admonition {line.strip()!r}")
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target):  # https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            if file.endswith(".html") or ".html#" in target:
                found.append(f"{where}: link to a built site's page {target!r}")
                continue
            dest = (path.parent / file).resolve() if file else path
            if file and not dest.exists():
                found.append(f"{where}: link to a missing file {target!r}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                found.append(f"{where}: no heading for the anchor {target!r} on GitHub")
    return found


def test_pages_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "benchmarks/README.md", "docs/index.md", "docs/guide.md"} <= names
    assert any(n.startswith("docs/api/") for n in names)


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_page_renders_on_github(page: Path) -> None:
    found = problems(page)
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("See :func:`lrjax.cosine`.", "reST role"),
        ('!!! note "Every output here is real"', "admonition"),
        ("[API](https://x.io/api.html)", None),  # an absolute link is the reader's to follow
        ("[API](api/schedules.html#cosine)", "built site"),
        ("[API](api/schedules.md#lrjax.schedules._cyclic.cosine)", "anchor"),
        ("[guide](guide.md#the-range-test)", None),
        ("```python\n:func:`x`\n```", None),
        ("Use `:func:` in docstrings", None),
    ],
)
def test_the_lint_finds_what_it_should(tmp_path, text, bad):
    docs = tmp_path / "docs"
    (docs / "api").mkdir(parents=True)
    (docs / "api" / "schedules.md").write_text("# Schedules\n\n## Cosine\n")
    (docs / "guide.md").write_text("# Guide\n\n## The range test\n")
    page = docs / "page.md"
    page.write_text(text + "\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = problems(page)
    finally:
        ROOT = saved
    if bad is None:
        assert not found, found
    else:
        assert len(found) == 1 and bad in found[0], found
