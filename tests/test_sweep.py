"""lrjax.sweep: vmapped grids over schedule and optimizer hyperparameters."""

from __future__ import annotations

import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax._sweep import grid_settings

T = 16


def _problem():
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    params = {"w": jax.random.normal(k1, (4, 6)) * 0.5, "v": jax.random.normal(k2, (6,)) * 0.5}
    x = jax.random.normal(k3, (T, 16, 4))
    return params, (x, jnp.cos(x.sum(-1)))


def loss_fn(p, b):
    return jnp.mean((jnp.tanh(b[0] @ p["w"]) @ p["v"] - b[1]) ** 2)


def reference(params, batches, tx, steps=T):
    """A Python loop of jitted steps with a concrete optimizer; stops as documented."""
    state = tx.init(params)

    @jax.jit
    def step(p, s, b):
        loss, g = jax.value_and_grad(loss_fn)(p, b)
        u, s = tx.update(g, s, p)
        return loss, optax.apply_updates(p, u), s

    out = np.full(steps, np.nan)
    ema, best = 0.0, math.inf
    for t in range(steps):
        loss, p2, s2 = step(params, state, jax.tree.map(lambda a: a[t], batches))
        out[t] = float(loss)
        ema = 0.98 * ema + 0.02 * out[t]
        sm = ema / (1 - 0.98 ** (t + 1))
        best = min(best, sm)
        if not math.isfinite(out[t]) or sm > 4 * best:
            break
        params, state = p2, s2
    return out


def make_one_cycle(max_value, pct_start):
    return optax.sgd(lrjax.one_cycle(max_value, T, pct_start=pct_start), momentum=0.9)


def test_one_cycle_grid_equals_independent_runs():
    params, batches = _problem()
    grid = {"max_value": [0.01, 0.1, 3.0], "pct_start": [0.2, 0.5]}
    res = lrjax.sweep(loss_fn, params, batches, make_one_cycle, grid)
    assert res.shape == (3, 2) and res.losses.shape == (1, 6, T)
    assert res.scores_grid().shape == (3, 2)
    settings = [dict(zip(grid, v)) for v in itertools.product(grid["max_value"], grid["pct_start"])]
    assert grid_settings(grid) == settings
    for i, setting in enumerate(settings):
        assert {k: res.grid[k][i] for k in grid} == pytest.approx(setting)
        want = reference(params, batches, make_one_cycle(**setting))
        np.testing.assert_array_equal(np.isnan(res.losses[0, i]), np.isnan(want))
        np.testing.assert_allclose(res.losses[0, i], want, rtol=3e-5, atol=1e-6)
    assert res.diverged.any() and not res.diverged.all()
    finite = np.where(np.isfinite(res.scores), res.scores, np.inf)
    assert res.best == pytest.approx(settings[int(np.argmin(finite))])
    assert res.best_index == int(np.argmin(finite))


def test_zip_over_optimizer_hyperparameters():
    params, batches = _problem()
    grid = {"b1": [0.5, 0.8, 0.95], "learning_rate": [0.003, 0.01, 0.03]}
    res = lrjax.sweep(
        loss_fn, params, batches, lambda b1, learning_rate: optax.adam(learning_rate, b1=b1), grid,
        combine="zip",
    )  # fmt: skip
    assert res.shape == (3,)
    for i in range(3):
        want = reference(params, batches, optax.adam(grid["learning_rate"][i], b1=grid["b1"][i]))
        np.testing.assert_allclose(res.losses[0, i], want, rtol=3e-5, atol=1e-6)


def test_range_test_is_a_sweep_over_the_rate():
    params, batches = _problem()
    rt = lrjax.range_test(loss_fn, params, batches, optax.adam, 1e-3, 10.0, 5, num_steps=T)
    sw = lrjax.sweep(
        loss_fn, params, batches, lambda learning_rate: optax.adam(learning_rate),
        {"learning_rate": rt.lrs},
    )  # fmt: skip
    np.testing.assert_allclose(sw.losses, rt.losses, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(sw.stop_step, rt.stop_step)
    np.testing.assert_array_equal(sw.status, rt.status)
    np.testing.assert_array_equal(sw.scores, rt.scores)


def test_changing_grid_values_does_not_recompile():
    from oracles import count_compiles

    params, batches = _problem()
    for i, values in enumerate(([0.01, 0.1], [0.02, 0.5], [1.0, 2.0])):
        call = lambda v=values: lrjax.sweep(
            loss_fn, params, batches, make_one_cycle, {"max_value": v, "pct_start": [0.3]}
        )
        compiles = count_compiles(call, "run_all")
        assert compiles == (1 if i == 0 else 0)


def test_integer_grid_values_and_json():
    params, batches = _problem()
    res = lrjax.sweep(
        loss_fn, params, batches,
        lambda total_steps: optax.sgd(lrjax.cosine(0.1, total_steps)),
        {"total_steps": [4, 8, 16]},
    )  # fmt: skip
    assert res.grid["total_steps"].dtype.kind == "i"
    assert res.best is not None and isinstance(res.best["total_steps"], int)
    for i, n in enumerate([4, 8, 16]):
        want = reference(params, batches, optax.sgd(lrjax.cosine(0.1, n)))
        np.testing.assert_allclose(res.losses[0, i], want, rtol=3e-5, atol=1e-6)
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["grid"]["total_steps"] == [4, 8, 16] and d["names"] == ["total_steps"]


def test_seeds_chunks_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    _, batches = _problem()

    def init_fn(key):
        k1, k2 = jax.random.split(key)
        return {"w": jax.random.normal(k1, (4, 6)) * 0.5, "v": jax.random.normal(k2, (6,)) * 0.5}

    grid = {"max_value": [0.01, 0.1, 0.3], "pct_start": [0.2, 0.5]}
    a = lrjax.sweep(loss_fn, None, batches, make_one_cycle, grid, seeds=2, init_fn=init_fn)
    b = lrjax.sweep(
        loss_fn, None, batches, make_one_cycle, grid, seeds=2, init_fn=init_fn, chunk_size=4
    )
    assert a.losses.shape == (2, 6, T)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-6, atol=1e-8)
    fig = a.plot()
    assert len(fig.axes[0].get_lines()) == 3  # two pct_start lines and the best marker
