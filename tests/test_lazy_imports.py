"""``import lrjax`` stays light: optional extras are imported only where they are used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sklearn", "matplotlib", "rich")


def _python(code: str, cwd: Path | None = None, **env_vars: str | None) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name, value in env_vars.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _loaded(prefixes: tuple[str, ...]) -> str:
    """Code printing which of ``prefixes`` have a module in ``sys.modules``."""
    return f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(prefixes)!r}))"


def test_import_lrjax_imports_no_optional_extra():
    out = _python(f"import sys, lrjax\n{_loaded(HEAVY)}")
    assert out.strip() == "[]"


def test_plotting_is_a_lazy_attribute():
    pytest.importorskip("matplotlib")
    code = (
        "import sys, lrjax\n"
        "assert 'plotting' in dir(lrjax) and 'lrjax.plotting' not in sys.modules\n"
        "f = lrjax.plotting.plot_schedule\n"
        "print(f.__module__, 'matplotlib' in sys.modules)\n"
        "fig = f(lrjax.cosine(0.1, 10), 10)\n"
        "print(type(fig).__name__, lrjax.cli.main.__module__)\n"
        "try:\n"
        "    lrjax.no_such_name\n"
        "except AttributeError as e:\n"
        "    print(e)\n"
    )
    out = _python(code).splitlines()
    assert out == [
        "lrjax._results._plots False",  # reachable; matplotlib waits for the first plot
        "Figure lrjax._cli",
        "module 'lrjax' has no attribute 'no_such_name'",
    ]


def test_lrjax_find_on_digits_imports_neither_sklearn_nor_rich_nor_a_gui(tmp_path):
    """Digits come from scikit-learn's data file, the bar (rich) is off, the PNG is drawn on Agg.

    The GUI toolkits are checked with a display set and no MPLBACKEND, where
    pyplot would try one (on machines that have one installed).
    """
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    code = (
        "import sys\n"
        "from lrjax.cli import main\n"
        "print(main(['find', '--steps', '3', '--num-lrs', '2', '--no-progress', '--no-cache']))\n"
        f"{_loaded(('sklearn', 'rich', 'tkinter', 'PyQt5', 'PyQt6', 'PySide6', 'gi', 'wx'))}"
    )
    out = _python(code, cwd=tmp_path, MPLBACKEND=None, DISPLAY=":99").splitlines()
    assert out[-2:] == ["0", "[]"]
    assert (tmp_path / "lr_find.png").read_bytes()[:4] == b"\x89PNG"


PUBLIC_MODULES = [
    "lrjax",
    "lrjax.schedules",
    "lrjax.transforms",
    "lrjax.callbacks",
    "lrjax.data",
    "lrjax.plotting",
    "lrjax.cli",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_module_says_what_it_exports(name):
    """``__all__`` lists the public names, each resolves, and ``import *`` brings
    no helper (``np``, ``jax``, ``os``) and nothing private."""
    import importlib

    module = importlib.import_module(name)
    exported = module.__all__
    assert len(set(exported)) == len(exported)
    for n in exported:
        assert not n.startswith("_") and getattr(module, n, None) is not None, n
    star: dict = {}
    exec(f"from {name} import *", star)
    assert not {"np", "jax", "jnp", "os", "optax", "zipfile"} & set(star), name
