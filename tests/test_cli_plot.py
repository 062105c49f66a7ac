"""``lrjax.plotting.plot_schedule``, ``lrjax plot`` and ``lrjax list``.

The plotted lines are compared with the schedules evaluated one Python step at
a time; the CLI is run in-process through ``main(argv)`` and, once each for a
good and a bad spec, as ``python -m lrjax`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import optax
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import lrjax
import lrjax.plotting
from lrjax import _cli as cli
from lrjax.plotting import plot_schedule
from lrjax.schedules import CATALOGUE, COMPOSITIONS

PNG = b"\x89PNG\r\n\x1a\n"


def stepwise(s, xs) -> np.ndarray:
    """``s`` at each step of ``xs``, one Python int per call."""
    return np.array([float(s(int(t))) for t in xs])


def assert_line_is(line, s, xs) -> None:
    """The line's x data is ``xs`` and its y data the values of ``s`` there."""
    np.testing.assert_array_equal(line.get_xdata(), xs)
    want = stepwise(s, xs)
    np.testing.assert_allclose(line.get_ydata(), want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


def shown(s) -> str:
    """The label of ``s``: its repr, cut to 90 characters."""
    text = repr(s)
    return text if len(text) <= 90 else text[:87] + "..."


def _vm_data() -> int | None:
    """This process' private data size in bytes (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("VmData:"))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) * 1024


@pytest.fixture(autouse=True)
def _guard():
    """Closes figures; caps new memory at 4 GiB (Linux) while a test runs.

    Several tests plot up to 2**31 steps: should the sampling regress, NumPy
    raises MemoryError at once instead of the machine swapping.
    """
    used = _vm_data()
    if used is not None:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        cap = used + 4 * 2**30
        if hard == resource.RLIM_INFINITY or cap < hard:
            resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    try:
        yield
    finally:
        if used is not None:
            resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
        plt.close("all")


# ------------------------------------------------------------------ plot_schedule


def test_one_schedule():
    s = lrjax.one_cycle(max_value=0.1, total_steps=200)
    fig = plot_schedule(s, 200)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert isinstance(ax, Axes)
    (line,) = ax.get_lines()
    assert_line_is(line, s, np.arange(200))
    assert ax.get_title() == shown(s)
    assert ax.get_yscale() == "linear"
    assert ax.get_xlabel() == "step"


def test_a_list_with_labels_and_a_log_scale():
    scheds = [
        lrjax.cosine(0.1, 150, end_value=1e-4),
        lrjax.warmup(lrjax.step_decay(0.1, 30, gamma=0.5), 20, init_value=1e-3),
        lrjax.cyclic(0.01, 0.1, 13, step_size_down=7, mode="triangular2"),
    ]
    fig = plot_schedule(scheds, 150, labels=["cos", "warm", "clr"], logy=True)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 3
    for line, s in zip(lines, scheds):
        assert_line_is(line, s, np.arange(150))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cos", "warm", "clr"]
    assert ax.get_yscale() == "log"


def test_default_labels_are_the_reprs_and_steps_may_be_given():
    short = lrjax.rex(0.1, 1000)
    long = lrjax.join([lrjax.linear(0.0, 0.1, 100), lrjax.cosine(0.1, 900)], [100])
    xs = np.array([0, 1, 50, 99, 100, 101, 500, 999, 5000])
    fig = plot_schedule([short, long], xs)
    ax = fig.axes[0]
    for line, s in zip(ax.get_lines(), [short, long]):
        assert_line_is(line, s, xs)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0] == repr(short) == shown(short)
    assert len(repr(long)) > 90 and texts[1] == shown(long)


def test_draws_on_a_given_axes_and_takes_any_callable():
    fig, (left, right) = plt.subplots(1, 2)
    opt = optax.linear_schedule(0.1, 0.0, 50)
    out = plot_schedule(opt, 60, ax=right)
    assert out is fig
    assert not left.get_lines()
    (line,) = right.get_lines()
    assert_line_is(line, opt, np.arange(60))


def test_a_long_range_is_sampled():
    s = lrjax.cosine(0.1, 2**31 - 1)
    (line,) = plot_schedule(s, 2**31).axes[0].get_lines()
    xs = line.get_xdata()
    assert len(xs) <= lrjax.plotting.MAX_POINTS
    assert xs[0] == 0 and xs[-1] == 2**31 - 1
    assert np.all(np.diff(xs) > 0)
    pick = np.linspace(0, len(xs) - 1, 20).astype(int)
    np.testing.assert_allclose(
        np.asarray(line.get_ydata())[pick], stepwise(s, xs[pick]), rtol=1e-6, atol=1e-7
    )


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: plot_schedule([], 10), "schedules"),
        (lambda: plot_schedule([lrjax.constant(0.1), 3], 10), "schedules[1]"),
        (lambda: plot_schedule(lrjax.constant(0.1), 0), "steps"),
        (lambda: plot_schedule(lrjax.constant(0.1), 2**31 + 1), "steps"),
        (lambda: plot_schedule(lrjax.constant(0.1), np.zeros((2, 2))), "steps"),
        (lambda: plot_schedule(lrjax.constant(0.1), 10, labels=["a", "b"]), "labels"),
    ],
)
def test_bad_arguments_name_the_parameter(call, name):
    with pytest.raises((ValueError, TypeError), match=re.escape(name)):
        call()


def test_the_docstring_example_runs_in_a_fresh_interpreter():
    import doctest

    examples = doctest.DocTestParser().get_examples(plot_schedule.__doc__)
    code = "\n".join(e.source for e in examples)
    assert "plot_schedule(" in code
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------- lrjax plot


@pytest.fixture
def captured(monkeypatch):
    """The figures ``lrjax plot`` draws (``_cmd_plot`` imports ``plot_schedule`` per call)."""
    figs = []

    def spy(*args, **kwargs):
        figs.append(fig := plot_schedule(*args, **kwargs))
        return fig

    monkeypatch.setattr(lrjax.plotting, "plot_schedule", spy)
    return figs


def run_main(argv, capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_plot_a_call_spec_writes_the_schedule(tmp_path, capsys, captured):
    out = tmp_path / "x.png"
    code, stdout, err = run_main(
        ["plot", "one_cycle(max_value=0.1, total_steps=1000)", "-o", str(out)], capsys
    )
    assert code == 0, err
    assert out.read_bytes().startswith(PNG)
    assert str(out) in stdout
    (line,) = captured[0].axes[0].get_lines()
    xs = line.get_xdata()
    assert xs[0] == 0 and xs[-1] >= 1000  # the whole shape, and the final value held
    want = lrjax.one_cycle(0.1, 1000)
    assert_line_is(line, want, np.arange(len(xs)))


def test_plot_a_json_spec_with_steps_and_logy(tmp_path, capsys, captured):
    s = lrjax.warmup(lrjax.cosine_restarts(0.1, 50, period_mult=2, decay=0.5), 25)
    out = tmp_path / "restarts.png"
    argv = ["plot", json.dumps(s.to_dict()), "-o", str(out), "--steps", "400", "--logy"]
    code, _, err = run_main(argv, capsys)
    assert code == 0, err
    assert out.read_bytes().startswith(PNG)
    ax = captured[0].axes[0]
    assert_line_is(ax.get_lines()[0], s, np.arange(400))
    assert ax.get_yscale() == "log"


def test_a_nested_spec_equals_its_json(tmp_path, capsys, captured):
    spec = "warmup(join([constant(0.1), linear(0.1, 0.0, 500)], [300]), steps=50)"
    s = lrjax.warmup(lrjax.join([lrjax.constant(0.1), lrjax.linear(0.1, 0.0, 500)], [300]), 50)
    for i, text in enumerate([spec, json.dumps(s.to_dict())]):
        code, _, err = run_main(["plot", text, "-o", str(tmp_path / f"{i}.png")], capsys)
        assert code == 0, err
    a, b = (f.axes[0].get_lines()[0] for f in captured)
    np.testing.assert_array_equal(a.get_xdata(), b.get_xdata())
    np.testing.assert_array_equal(a.get_ydata(), b.get_ydata())
    assert_line_is(a, s, a.get_xdata())


def test_a_schedule_longer_than_memory_still_plots(tmp_path, capsys, captured):
    """The longest valid spec: the default horizon (1.2x) is clamped to 2**31 and sampled."""
    out = tmp_path / "long.png"
    spec = f"cosine(init_value=0.1, steps={2**31 - 1})"
    code, _, err = run_main(["plot", spec, "-o", str(out)], capsys)
    assert code == 0, err
    assert out.read_bytes().startswith(PNG)
    xs = captured[0].axes[0].get_lines()[0].get_xdata()
    assert xs[-1] == 2**31 - 1 and len(xs) <= lrjax.plotting.MAX_POINTS


#: Wrong specs not already in tests/test_bad_inputs.py, and a word the line must hold.
BAD_SPECS = [
    ("one_cycle(max_value=0.1)", "total_steps"),
    ("one_cycle(max_value=0.1, total_steps=1000, pct_start=1.5)", "pct_start"),
    ("cosine(init_value=0.1, steps=10, warmup=5)", "warmup"),
    ("cosine(init_value=x, steps=10)", "'x'"),
    ("0.1", "must be a call"),
    ("__import__('os').getcwd()", "must be a call"),
    ("cosine(0.1, 10) * 2", "must be a call"),
    ("warmup(0.1, steps=3)", "schedule"),
    ("", "empty"),
    ('{"init_value": 0.1}', "name"),
    ('{"name": "warmup", "schedule": {"name": "cosinus"}, "steps": 3}', "cosinus"),
    ('{"name": "cosine", "init_value": [0.1, 0.2], "steps": 10}', "init_value"),
    ('{"name": "cosine", "init_value": 0.1, "steps": 10, "end_value": null}', "end_value"),
    ("cosine(init_value=0.1, steps=3000000000)", "steps must be <= 2147483647"),
    ("cosine(init_value=0.1, steps=10)", "--steps"),  # with --steps 2**31 + 1
]


@pytest.mark.parametrize(("spec", "word"), BAD_SPECS, ids=[s or "empty" for s, _ in BAD_SPECS])
def test_a_bad_spec_is_one_line_and_exit_2(spec, word, tmp_path, capsys):
    argv = ["plot", spec, "-o", str(tmp_path / "x.png")]
    if word == "--steps":
        argv += ["--steps", str(2**31 + 1)]
    code, out, err = run_main(argv, capsys)
    assert code == 2
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("lrjax: error: "), err
    assert word in lines[0]
    assert "Traceback" not in out + err
    assert not (tmp_path / "x.png").exists()


def test_python_m_lrjax_plot(tmp_path):
    out = tmp_path / "x.png"
    cmd = [sys.executable, "-m", "lrjax", "plot", "one_cycle(max_value=0.1, total_steps=1000)"]
    proc = subprocess.run([*cmd, "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes().startswith(PNG)


def test_python_m_lrjax_bad_spec(tmp_path):
    cmd = [sys.executable, "-m", "lrjax", "plot", "one_cycle(max_value=0.1, total_steps=-5)"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip("\n").split("\n")
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lrjax: error: ") and "total_steps" in lines[0]
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------- lrjax list


def test_list_names_every_catalogue_schedule_and_composition(capsys):
    code, out, _ = run_main(["list"], capsys)
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line and line[0] != " "]
    names = [n for n in listed if n in CATALOGUE]
    assert sorted(names) == sorted(CATALOGUE)
    for name, cls in CATALOGUE.items():
        first = cli.plain_text(cls.__doc__.strip().splitlines()[0])
        assert any(line.startswith(name) and first in line for line in out.splitlines()), name
    comp = next(line for line in out.splitlines() if line.startswith("compositions:"))
    for name in COMPOSITIONS:
        assert name in comp


def test_list_into_a_closed_pipe_is_quiet() -> None:
    """``lrjax list | head``: a reader that goes away ends the command without a traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrjax", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait() in (0, 141)
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_list_is_plain_text_without_rest_markup(capsys):
    code, out, _ = run_main(["list"], capsys)
    assert code == 0
    marked_up = [n for n, c in CATALOGUE.items() if re.search(r"``|:\w+:`", c.__doc__)]
    assert marked_up  # the docstrings do use markup, so this checks the conversion
    for line in out.splitlines():
        assert "`" not in line, line
        assert not re.search(r":(class|func|meth|mod|attr|data|obj|py:\w+):", line), line
    assert "one_cycle_momentum  The momentum that goes with one_cycle:" in out


@pytest.mark.parametrize(
    ("rest", "plain"),
    [
        ("Decays by ``gamma`` (torch ``StepLR``).", "Decays by gamma (torch StepLR)."),
        (":class:`one_cycle` and :func:`~lrjax.schedules.cosine`", "one_cycle and cosine"),
        (":py:meth:`Schedule.to_dict`, `x`, `link`_", "Schedule.to_dict, x, link"),
        (":func:`a schedule <lrjax.cosine>`", "a schedule"),
        ("no markup: 1/sqrt(t)", "no markup: 1/sqrt(t)"),
    ],
)
def test_plain_text(rest, plain):
    assert cli.plain_text(rest) == plain


# ------------------------------------------------------------------- --help


def _option_entries(help_text: str) -> dict[str, str]:
    """``{"--steps STEPS": "training steps per rate (default: 100)", ...}`` from ``--help``."""
    entries: dict[str, str] = {}
    section = None
    key = None
    for line in help_text.splitlines():
        if line and not line.startswith(" "):
            section = line.rstrip(":")
            key = None
            continue
        if section != "options":
            continue
        m = re.match(r"^  (-\S+(?: \S+)?(?:, -\S+(?: \S+)?)*)(?:\s{2,}(.*))?$", line)
        if m:
            key = m.group(1)
            entries[key] = m.group(2) or ""
        elif key is not None and line.strip():
            entries[key] = (entries[key] + " " + line.strip()).strip()
    return entries


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("find", {"--steps": "100", "--optimizer": "adam", "--out": "lr_find.png",
                  "--min-lr": "1e-7", "--max-lr": "10.0", "--num-lrs": "32", "--seeds": "1",
                  "--mode": "parallel", "--data": "digits"}),
        ("plot", {"--out": "schedule.png", "--steps": "longest step count", "--logy": "linear"}),
    ],
)  # fmt: skip
def test_help_shows_every_default(command, shown, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    entries = _option_entries(capsys.readouterr().out)
    assert len(entries) >= len(shown) + 1, entries
    for key, text in entries.items():
        if key == "-h, --help":
            continue
        assert "default" in text, f"{command} {key}: {text!r}"
        flag = next(f for f in re.findall(r"--[\w-]+", key))
        if flag in shown:
            assert shown[flag] in text, f"{command} {key}: {text!r}"


def test_min_lr_default_is_the_api_default(capsys):
    import inspect

    api = inspect.signature(lrjax.range_test).parameters["min_lr"].default
    args = cli.build_parser().parse_args(["find"])
    assert args.min_lr == api == 1e-7


def _console_script() -> str | None:
    """The ``lrjax`` entry point installed next to this Python, if any."""
    import shutil

    return shutil.which("lrjax", path=str(Path(sys.executable).parent))


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["--help"], "usage: lrjax [-h]"),
        (["find", "--help"], "usage: lrjax find"),
        (["plot", "--help"], "usage: lrjax plot"),
        (["list"], "constant "),
    ],
)
def test_python_m_lrjax_and_the_lrjax_command_print_the_same(argv, start, tmp_path):
    script = _console_script()
    if script is None:
        pytest.skip("the lrjax console script is not installed (pip install -e .)")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, COLUMNS="100", PYTHONPATH=str(root))
    runs = [
        subprocess.run(
            cmd + argv, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
        )
        for cmd in ([sys.executable, "-m", "lrjax"], [script])
    ]
    for proc in runs:
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stdout.startswith(start)


def test_version_prints_lrjax_jax_and_optax_versions(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code in (0, None)
    out, err = capsys.readouterr()
    want = f"lrjax {lrjax.__version__} (jax {metadata.version('jax')}, "
    want += f"optax {metadata.version('optax')})\n"
    assert out == want and err == ""


def test_version_from_the_command_line(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-m", "lrjax", "--version"], capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert re.fullmatch(r"lrjax \S+ \(jax \S+, optax \S+\)\n", proc.stdout), proc.stdout
