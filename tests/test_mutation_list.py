"""The planted-bug list of tests/mutation/run.py matches the code it mutates.

Running the mutations takes many minutes and is done by hand (see
tests/mutation/README.md); this only checks, in every suite run, that each
mutation's old text still occurs exactly once in its file, so that a refactor
that moves the code also moves the mutation.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_runner():
    spec = importlib.util.spec_from_file_location("mutation_run", ROOT / "tests/mutation/run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_mutation_applies_to_the_current_code():
    run = load_runner()
    assert run.check_in_sync(run.MUTATIONS, ROOT) == []


def test_the_issue_13_mutations_are_listed():
    ids = {m.id for m in load_runner().MUTATIONS}
    required = {
        "engine-negative-best-rule-off",
        "engine-freeze-removed",
        "sweep-grid-order-flipped",
        "cosine-restarts-overflow-guard-off",
        "plateau-cooldown-off",
        "valley-off-by-one",
        "early-stopping-tie-counts-as-improvement",
    }
    assert required <= ids, required - ids


def test_a_stale_mutation_is_reported(tmp_path):
    run = load_runner()
    (tmp_path / "lrjax").mkdir()
    (tmp_path / "lrjax" / "x.py").write_text("a = 1\na = 1\n")
    stale = run.Mutation("m", "area", "lrjax/x.py", "b = 2", "b = 3", ("tests",), "")
    twice = run.Mutation("n", "area", "lrjax/x.py", "a = 1", "a = 2", ("tests",), "")
    missing = run.Mutation("o", "area", "lrjax/y.py", "a", "b", ("tests",), "")
    problems = run.check_in_sync([stale, twice, missing], tmp_path)
    assert len(problems) == 3 and "found 0 times" in problems[0] and "found 2 times" in problems[1]
