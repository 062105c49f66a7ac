"""Every docstring example in the package runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import pytest

import lrjax

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(lrjax.__path__, prefix="lrjax.")
    if m.name != "lrjax.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_public_names_have_examples() -> None:
    """Each public schedule, transform and entry point shows a runnable example."""
    missing = [
        n
        for n in ("cosine", "one_cycle", "reduce_on_plateau", "bold_driver", "scale_by_layer",
                  "scale_by_mup", "mup_shapes", "adabound", "get_learning_rate",
                  "early_stopping", "range_test", "sweep", "tune")
        if ">>>" not in (getattr(lrjax, n).__doc__ or "")
    ]  # fmt: skip
    assert not missing, missing
