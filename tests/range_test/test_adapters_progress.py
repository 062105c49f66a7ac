"""Flax NNX / Linen adapters equal the plain-JAX model; progress reports."""

from __future__ import annotations

import io
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax import _engine, from_linen, from_nnx

KW = dict(min_lr=1e-3, max_lr=1.0, num_lrs=3, num_steps=8)


def _data():
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 16, 3))
    return x, jnp.sin(x @ jnp.array([1.0, -1.0, 0.5]))[..., None]


def _plain_dense(kernel, bias):
    def loss(p, b):
        return jnp.mean((b[0] @ p["kernel"] + p["bias"] - b[1]) ** 2)

    return loss, {"kernel": jnp.asarray(kernel), "bias": jnp.asarray(bias)}


def test_nnx_module_equals_plain_jax():
    nnx = pytest.importorskip("flax.nnx")
    model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
    batches = _data()

    def nnx_loss(m, b):
        return jnp.mean((m(b[0]) - b[1]) ** 2)

    before = {k: np.array(v[...]) for k, v in (("kernel", model.kernel), ("bias", model.bias))}
    auto = lrjax.range_test(nnx_loss, model, batches, optax.sgd, **KW)
    loss, params = from_nnx(nnx_loss, model)
    explicit = lrjax.range_test(loss, params, batches, optax.sgd, **KW)
    plain = lrjax.range_test(
        *_plain_dense(model.kernel.get_value(), model.bias.get_value()), batches, optax.sgd, **KW
    )
    np.testing.assert_allclose(auto.losses, plain.losses, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(auto.losses, explicit.losses)
    # the module itself is left untouched: its values before the run, bit for bit
    np.testing.assert_array_equal(np.asarray(model.kernel[...]), before["kernel"])
    np.testing.assert_array_equal(np.asarray(model.bias[...]), before["bias"])
    assert not np.allclose(auto.losses[0, :, -1], auto.losses[0, :, 0])  # it did train


def test_linen_module_equals_plain_jax():
    nn = pytest.importorskip("flax.linen")
    module = nn.Dense(1)
    batches = _data()
    variables = module.init(jax.random.PRNGKey(0), batches[0][0])

    def linen_loss(apply, b):
        return jnp.mean((apply(b[0]) - b[1]) ** 2)

    auto = lrjax.range_test(linen_loss, (module, variables), batches, optax.sgd, **KW)
    loss, params = from_linen(linen_loss, module, variables)
    explicit = lrjax.range_test(loss, params, batches, optax.sgd, **KW)
    p = variables["params"]
    plain = lrjax.range_test(*_plain_dense(p["kernel"], p["bias"]), batches, optax.sgd, **KW)
    np.testing.assert_allclose(auto.losses, plain.losses, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(auto.losses, explicit.losses)
    with pytest.raises(ValueError, match="params"):
        from_linen(linen_loss, module, {"batch_stats": {}})
    with pytest.raises(TypeError, match=r"linen\.Module"):
        from_linen(linen_loss, object(), variables)


def test_progress_none_and_true_report_false_does_not():
    assert _engine.progress_enabled(None) is True  # a bar or plain lines, decided later
    assert _engine.progress_enabled(True) is True
    assert _engine.progress_enabled(False) is False


def test_progress_bar_draws_after_delay_and_counts(monkeypatch):
    pytest.importorskip("rich")
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stderr as a terminal
    with _engine.ProgressBar(total=4, enabled=True, description="t", delay=0.0) as bar:
        deadline = time.monotonic() + 5
        while bar._progress is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bar._progress is not None  # started by the timer thread
        bar.advance(3)
        assert bar._progress.tasks[0].completed == 3
    assert bar._progress is None and bar.done == 3
    assert bar.lines_written == 0  # a bar, not lines
    # a fast run never draws
    with _engine.ProgressBar(total=4, enabled=True, delay=60.0) as bar:
        bar.advance(4)
    assert bar._progress is None


def _wait_for_lines(bar, n):
    deadline = time.monotonic() + 5
    while bar.lines_written < n and time.monotonic() < deadline:
        time.sleep(0.005)
    assert bar.lines_written >= n


@pytest.mark.parametrize("rich_installed", [True, False])
def test_progress_without_a_terminal_prints_plain_lines(monkeypatch, rich_installed):
    """No terminal (or no rich): one line every ``interval`` seconds, and the total at the end."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "dumb")
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    if not rich_installed:
        monkeypatch.setitem(sys.modules, "rich", None)  # import rich raises ImportError
        monkeypatch.setitem(sys.modules, "rich.console", None)
    with _engine.ProgressBar(8, True, "range test: 8 rates", delay=0.0, interval=0.02) as bar:
        _wait_for_lines(bar, 1)
        bar.advance(3)
        _wait_for_lines(bar, bar.lines_written + 2)  # a later line shows the new count
    lines = err.getvalue().splitlines()
    assert len(lines) >= 3 and bar._progress is None
    assert lines[0].startswith("range test: 8 rates: 0/8 done, ") and lines[0].endswith(" s")
    assert any(ln.startswith("range test: 8 rates: 3/8 done, ") for ln in lines[1:-1])
    assert lines[-1].startswith("range test: 8 rates: 3/8 done, ")  # the closing line


def test_progress_lines_wait_for_the_delay_and_stop_when_disabled(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with _engine.ProgressBar(4, True, "quick", delay=60.0, interval=0.01) as bar:
        time.sleep(0.05)
        bar.advance(4)
    with _engine.ProgressBar(4, False, "off", delay=0.0, interval=0.01) as bar:
        time.sleep(0.05)
        bar.advance(4)
    assert err.getvalue() == ""  # a run shorter than the delay, and progress=False


def _slow_batches(n, seconds):
    """A generator whose batches take ``seconds`` each to arrive (a slow loader)."""
    x, y = _data()
    for t in range(n):
        time.sleep(seconds)
        yield x[t % 8], y[t % 8]


@pytest.mark.parametrize("progress", [None, False])
def test_range_test_reports_on_stderr_without_a_terminal(capsys, monkeypatch, progress):
    """The default (auto) prints plain lines on a pipe once a run outlasts the delay."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "dumb")
    loss_fn, params = _plain_dense(np.zeros((3, 1)), np.zeros(1))
    steps = 40  # 40 x 0.08 s: longer than the delay (2 s)
    r = lrjax.range_test(loss_fn, params, _slow_batches(steps, 0.08), optax.sgd,
                         min_lr=1e-3, max_lr=1.0, num_lrs=3, num_steps=steps,
                         progress=progress)  # fmt: skip
    assert r.losses.shape == (1, 3, steps)
    err = capsys.readouterr().err
    if progress is False:
        assert err == ""
    else:
        lines = err.strip().splitlines()
        assert lines, "no progress line on stderr"
        assert all(ln.startswith(f"range test: 3 rates x {steps} steps: ") for ln in lines), err
        assert lines[-1].startswith(f"range test: 3 rates x {steps} steps: 3/3 done, "), err


def test_range_test_with_progress_true_runs(tiny):
    loss_fn, params, batches = tiny
    r = lrjax.range_test(loss_fn, params, batches, optax.sgd, progress=True, num_steps=4, **{
        k: v for k, v in KW.items() if k != "num_steps"})  # fmt: skip
    assert r.losses.shape == (1, 3, 4)
