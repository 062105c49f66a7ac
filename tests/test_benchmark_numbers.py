"""Every number published in benchmarks/README.md comes from a committed output file.

Each results table in the README is preceded by a line
``Source: `benchmarks/results/NAME.txt` `` naming the output it was copied from.
For every row of the table, the numbers in its cells (``1.31x`` -> ``1.31``,
``97.5%`` -> ``97.5``, ``5/1/3`` -> ``5``, ``1``, ``3``) must all stand, printed
the same way, in one line of that file: a number that was retyped, rounded
differently or left over from an older run fails. Files whose header says
``TRANSCRIBED`` must say so in the README as well.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "benchmarks" / "README.md"
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")
SOURCE = re.compile(r"^Source: `(benchmarks/results/[\w.-]+\.(?:txt|md))`(.*)$")
#: The scripts' table describes what each script does; it holds no measurements.
DESCRIPTIVE_HEADERS = {("script", "what it measures")}


def numbers(text: str) -> list[str]:
    """The numbers in ``text`` as printed (a model name's ``64-64-10`` gives 64, 64, 10)."""
    return [n.lstrip("-") for n in NUMBER.findall(text.replace("-", " "))]


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def tables(text: str) -> list[tuple[int, str | None, str, list[list[str]]]]:
    """``(line number, source file or None, text after the source, rows)`` per table."""
    lines = text.splitlines()
    out = []
    i = 0
    source, note = None, ""
    while i < len(lines):
        m = SOURCE.match(lines[i])
        if m:
            source, note = m.group(1), m.group(2)
        if (
            lines[i].startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\|[-| :]+\|$", lines[i + 1])
        ):
            start = i
            header = cells(lines[i])
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            out.append((start + 1, source, note, [header, *rows]))
            source, note = None, ""  # a source line names the next table only
            continue
        i += 1
    return out


TABLES = tables(README.read_text())


def test_the_readme_has_results_tables():
    sourced = [t for t in TABLES if t[1]]
    assert len(sourced) >= 9, [t[:2] for t in TABLES]
    # one table per script and machine, CPU and GPU
    names = {Path(t[1]).stem for t in sourced}
    for script in ("schedule_overhead", "recompiles", "range_test_speed", "range_test_scaling"):
        assert {f"{script}_cpu2", f"{script}_h200"} <= names, names
    assert {"suggestion_quality_cpu", "tune_quality_cpu", "cli_startup"} <= names


@pytest.mark.parametrize(
    ("line", "source", "note", "rows"),
    [pytest.param(*t, id=f"line{t[0]}") for t in TABLES],
)
def test_every_number_in_a_table_is_in_the_file_it_names(line, source, note, rows):
    header = tuple(c.lower() for c in rows[0])
    if header in DESCRIPTIVE_HEADERS:
        assert source is None
        return
    assert source, f"the table at README line {line} names no benchmarks/results/ file"
    path = ROOT / source
    assert path.is_file(), f"README line {line}: {source} is not in the repository"
    text = path.read_text()
    file_lines = [set(numbers(ln)) for ln in text.splitlines()]
    checked = 0
    for row in rows[1:]:
        # The first cell names the row (a schedule, a method, a model): its digits
        # (the 32 of "32 rates") are checked with the rest when it has any.
        wanted = set(numbers(" ".join(row)))
        if not wanted:
            continue
        assert any(wanted <= have for have in file_lines), (
            f"README line {line}, row {row}: numbers {sorted(wanted)} not together on "
            f"one line of {source}"
        )
        checked += len(wanted)
    assert checked, f"the table at README line {line} has no numbers"
    transcribed = "TRANSCRIBED" in text.split("\n", 1)[0]
    assert transcribed == ("transcribed" in note), (
        f"README line {line}: {source} is {'' if transcribed else 'not '}a transcription; "
        "the Source line must say so exactly when it is"
    )


def test_every_results_file_has_machine_and_versions():
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.txt")):
        text = path.read_text()
        assert re.search(r"jax \d+\.\d+", text), f"{path.name}: no jax version"
        assert re.search(r"\d+ (CPU )?cores|H200", text), f"{path.name}: no machine"
