"""Bad arguments raise clear errors that name the parameter (and nothing runs)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"num_steps": 13}, ValueError, r"num_steps=13 is larger than the number of batches \(12"),
        ({"num_steps": 0}, ValueError, "num_steps must be >= 1"),
        ({"num_steps": 2.5}, TypeError, "num_steps"),
        ({"min_lr": 1.0, "max_lr": 1.0}, ValueError, "min_lr must be < max_lr"),
        ({"min_lr": 2.0, "max_lr": 1.0}, ValueError, "min_lr must be < max_lr"),
        ({"min_lr": 0.0}, ValueError, "min_lr must be finite and > 0"),
        ({"max_lr": float("inf")}, ValueError, "max_lr must be finite"),
        ({"max_lr": float("nan")}, ValueError, "max_lr must be finite"),
        ({"min_lr": "1e-3"}, TypeError, "min_lr"),
        ({"num_lrs": 0}, ValueError, "num_lrs must be >= 1"),
        ({"num_lrs": 3.0}, TypeError, "num_lrs"),
        ({"optimizer": 0.01}, TypeError, "optimizer must be a callable"),
        ({"optimizer": optax.adam(1e-3)}, TypeError, "optimizer must be a callable"),
        ({"optimizer": lambda lr: lr}, TypeError, r"optimizer\(lr\) must return"),
        ({"mode": "fast"}, ValueError, "mode must be one of"),
        ({"seeds": 0}, ValueError, "seeds must be >= 1"),
        ({"seeds": 2}, ValueError, "seeds=2 needs init_fn"),
        ({"init_fn": 3}, TypeError, "init_fn"),
        ({"diverge_factor": 1.0}, ValueError, "diverge_factor must be > 1"),
        ({"diverge_factor": "x"}, TypeError, "diverge_factor"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1"),
        ({"mesh": "gpu"}, TypeError, "mesh"),
        ({"progress": "yes", "num_steps": 1}, TypeError, "progress"),
    ],
)
def test_bad_arguments(tiny, kwargs, error, match):
    loss_fn, params, batches = tiny
    with pytest.raises(error, match=match):
        lrjax.range_test(loss_fn, params, batches, **{"num_steps": 12, **kwargs})


def test_bad_loss_and_batches(tiny):
    loss_fn, params, (x, y) = tiny
    with pytest.raises(ValueError, match="loss_fn must return a scalar, got shape"):
        lrjax.range_test(lambda p, b: (b[0] @ p["w1"]).sum(-1), params, (x, y), num_steps=3)
    with pytest.raises(ValueError, match=r"not \(loss, aux\)|return the loss alone"):
        lrjax.range_test(lambda p, b: (loss_fn(p, b), 0.0), params, (x, y), num_steps=3)
    with pytest.raises(TypeError, match="float scalar"):
        lrjax.range_test(lambda p, b: jnp.int32(1), params, (x, y), num_steps=3)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        lrjax.range_test("mse", params, (x, y), num_steps=3)
    with pytest.raises(ValueError, match="batches have inconsistent leading"):
        lrjax.range_test(loss_fn, params, (x, y[:5]), num_steps=3)
    with pytest.raises(ValueError, match=r"batches\[1\] is a scalar"):
        lrjax.range_test(loss_fn, params, (x, jnp.float32(1)), num_steps=3)
    with pytest.raises(ValueError, match="batches must be a pytree of arrays"):
        lrjax.range_test(loss_fn, params, (), num_steps=3)
    with pytest.raises(TypeError, match=r"params\['w1'\] must be a float array"):
        lrjax.range_test(loss_fn, {**params, "w1": np.ones((4, 8), np.int32)}, (x, y), num_steps=3)
    with pytest.raises(ValueError, match="params is None"):
        lrjax.range_test(loss_fn, None, (x, y), num_steps=3)


def test_callable_batches_allow_any_num_steps(tiny):
    loss_fn, params, (x, y) = tiny
    r = lrjax.range_test(
        loss_fn, params, lambda t: (x[t % 12], y[t % 12]), optax.sgd, 1e-3, 1e-1, 2, num_steps=30
    )
    assert r.losses.shape == (1, 2, 30)


def test_sweep_bad_arguments(tiny):
    loss_fn, params, batches = tiny
    make = lambda learning_rate: optax.sgd(learning_rate)
    with pytest.raises(ValueError, match="grid must be a non-empty dict"):
        lrjax.sweep(loss_fn, params, batches, make, {})
    with pytest.raises(ValueError, match="equal lengths"):
        lrjax.sweep(loss_fn, params, batches, lambda a, b: optax.sgd(a), {"a": [1, 2], "b": [1]},
                    combine="zip")  # fmt: skip
    with pytest.raises(ValueError, match="combine"):
        lrjax.sweep(loss_fn, params, batches, make, {"learning_rate": [0.1]}, combine="outer")
    with pytest.raises(ValueError, match=r"grid\['learning_rate'\] must hold finite"):
        lrjax.sweep(loss_fn, params, batches, make, {"learning_rate": [0.1, np.nan]})
    with pytest.raises(TypeError, match="make_optimizer must be a callable"):
        lrjax.sweep(loss_fn, params, batches, optax.sgd(0.1), {"learning_rate": [0.1]})
    with pytest.raises(TypeError, match="grid setting"):
        lrjax.sweep(loss_fn, params, batches, make, {"lr": [0.1]})  # wrong keyword
    with pytest.raises(ValueError, match=r"grid setting .*pct_start"):
        lrjax.sweep(
            loss_fn, params, batches,
            lambda pct_start: optax.sgd(lrjax.one_cycle(0.1, 12, pct_start=pct_start)),
            {"pct_start": [0.3, 1.5]},
        )  # fmt: skip
    with pytest.raises(ValueError, match="num_steps is required"):
        lrjax.sweep(loss_fn, params, lambda t: batches, make, {"learning_rate": [0.1]})
    with pytest.raises(ValueError, match="num_steps=20 is larger"):
        lrjax.sweep(loss_fn, params, batches, make, {"learning_rate": [0.1]}, num_steps=20)
