"""Flax NNX / Linen adapters equal the plain-JAX model; the progress bar."""

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


def test_progress_auto_is_off_without_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert _engine.progress_enabled(None) is False
    assert _engine.progress_enabled(True) is True
    assert _engine.progress_enabled(False) is False


def test_progress_bar_draws_after_delay_and_counts(monkeypatch):
    pytest.importorskip("rich")
    with _engine.ProgressBar(total=4, enabled=True, description="t", delay=0.0) as bar:
        deadline = time.monotonic() + 5
        while bar._progress is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bar._progress is not None  # started by the timer thread
        bar.advance(3)
        assert bar._progress.tasks[0].completed == 3
    assert bar._progress is None and bar.done == 3
    # a fast run never draws
    with _engine.ProgressBar(total=4, enabled=True, delay=60.0) as bar:
        bar.advance(4)
    assert bar._progress is None


def test_range_test_with_progress_true_runs(tiny):
    loss_fn, params, batches = tiny
    r = lrjax.range_test(loss_fn, params, batches, optax.sgd, progress=True, num_steps=4, **{
        k: v for k, v in KW.items() if k != "num_steps"})  # fmt: skip
    assert r.losses.shape == (1, 3, 4)
