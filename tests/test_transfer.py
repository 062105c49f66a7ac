"""``lrjax.transfer``: small sweeps on the engine, read by ``TransferResult``.

The analysis itself (optima, laws, intervals, rules) is tested on synthetic
curves in ``test_transfer_analysis.py``; here the front: each size's sweep is
the range test of that size's model (one initialisation per seed, the same
batches), run lengths build their own schedules, streams equal stacked
batches, a second call compiles nothing, FLOPs are XLA's, bad input gets one
line, and on a muP model the fitted width exponent's interval holds 0 where
the standard parametrization's does not.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from oracles import count_compiles

import lrjax

X = jax.random.normal(jax.random.PRNGKey(0), (40, 16, 4))
BATCHES = (X, jnp.tanh(X).sum(-1))
RUN = dict(min_lr=1e-3, max_lr=3.0, num_lrs=6, progress=False)


def mlp(width, key):
    k1, k2 = jax.random.split(key)
    return {
        "w": jax.random.normal(k1, (4, width)) / 2,
        "v": jax.random.normal(k2, (width,)) / jnp.sqrt(width),
    }


def loss(p, b):
    return jnp.mean((jnp.tanh(b[0] @ p["w"]) @ p["v"] - b[1]) ** 2)


def init_keys(key, seeds):
    """The documented initialisation keys: ``split(split(key)[1], seeds)``."""
    return jax.random.split(jax.random.split(key)[1], seeds)


def test_each_width_is_the_range_test_of_its_model_per_seed():
    key = jax.random.PRNGKey(3)
    res = lrjax.transfer(loss, mlp, BATCHES, optax.adam, sizes=[4, 8, 16], target=64,
                         num_steps=20, seeds=2, key=key, **RUN)  # fmt: skip
    assert len(res.sweeps) == 3 and res.sizes.tolist() == [4, 8, 16]
    for sweep, width in zip(res.sweeps, (4, 8, 16)):
        assert sweep.losses.shape == (2, 6, 20)
        for s, k in enumerate(init_keys(key, 2)):
            alone = lrjax.range_test(loss, mlp(width, k), BATCHES, optax.adam, num_steps=20, **RUN)
            # the same program on the same numbers (copies never interact)
            np.testing.assert_allclose(sweep.losses[s], alone.losses[0], rtol=1e-6, atol=1e-7)
    assert res.steps == 3 * 2 * 6 * 20
    # the optima are read off the curves: within the tested rates
    assert ((res.optima >= 1e-3) & (res.optima <= 3.0)).all()


def step_flops(width):
    """One training step's FLOPs by XLA's cost analysis of ``value_and_grad``."""
    p = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), mlp(width, jax.random.key(0))
    )
    b = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), BATCHES)
    return jax.jit(jax.value_and_grad(loss)).lower(p, b).cost_analysis()["flops"]


def test_flops_are_xlas_count_of_the_small_runs_and_of_one_target_run():
    res = lrjax.transfer(loss, mlp, BATCHES, optax.sgd, sizes=[4, 8, 16], target=256,
                         num_steps=10, seeds=1, **RUN)  # fmt: skip
    small = sum(6 * 1 * 10 * step_flops(w) for w in (4, 8, 16))
    np.testing.assert_allclose(res.flops, small, rtol=1e-9)
    np.testing.assert_allclose(res.target_flops, 10 * step_flops(256), rtol=1e-9)
    assert step_flops(256) > 8 * step_flops(16)  # the count grows with the width


def cosine_adam(learning_rate, num_steps):
    return optax.adam(lrjax.cosine(learning_rate, num_steps))


def test_along_steps_each_run_builds_its_schedule_and_ends_at_its_length():
    key = jax.random.PRNGKey(1)
    factory = lambda key: mlp(8, key)
    res = lrjax.transfer(loss, factory, BATCHES, cosine_adam, sizes=[10, 20, 40], target=200,
                         along="steps", seeds=2, key=key, **RUN)  # fmt: skip
    for sweep, steps in zip(res.sweeps, (10, 20, 40)):
        assert sweep.num_steps == steps
        for s, k in enumerate(init_keys(key, 2)):
            alone = lrjax.sweep(loss, mlp(8, k), BATCHES, lambda lr, n=steps: cosine_adam(lr, n),
                                {"lr": np.geomspace(1e-3, 3.0, 6)}, num_steps=steps,
                                progress=False)  # fmt: skip
            np.testing.assert_allclose(sweep.losses[s], alone.losses[0], rtol=1e-6, atol=1e-7)


def test_along_steps_a_streamed_loader_equals_stacked_batches():
    """Every run length reads the same first batches of a one-shot stream."""
    factory = lambda key: mlp(8, key)
    kw = dict(sizes=[10, 20, 40], target=200, along="steps", seeds=2, **RUN)
    stacked = lrjax.transfer(loss, factory, BATCHES, cosine_adam, **kw)
    stream = (jax.tree.map(lambda a, t=t: np.asarray(a[t]), BATCHES) for t in range(40))
    streamed = lrjax.transfer(loss, factory, stream, cosine_adam, **kw)
    for a, b in zip(stacked.sweeps, streamed.sweeps):
        np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(stacked.optima, streamed.optima)
    assert stacked.rate == streamed.rate


def test_a_second_call_with_other_rates_compiles_nothing():
    kw = dict(sizes=[4, 8, 16], target=64, num_steps=10, seeds=2, num_lrs=6, progress=False)
    run = lambda lo: lrjax.transfer(loss, mlp, BATCHES, optax.sgd, min_lr=lo, max_lr=1.0, **kw)
    first = count_compiles(lambda: run(1e-3), "run_all")
    assert first <= 3  # one program per width (an earlier test may have compiled some)
    assert count_compiles(lambda: run(1e-4), "run_all") == 0
    assert count_compiles(lambda: run(1e-2), "") == 0  # nothing at all


def test_nnx_and_equinox_factories():
    nnx = pytest.importorskip("flax.nnx")
    eqx = pytest.importorskip("equinox")

    class Net(nnx.Module):
        def __init__(self, width, rngs):
            self.hidden = nnx.Linear(4, width, rngs=rngs)
            self.out = nnx.Linear(width, 1, rngs=rngs)

        def __call__(self, x):
            return self.out(jnp.tanh(self.hidden(x)))[..., 0]

    nnx_loss = lambda m, b: jnp.mean((m(b[0]) - b[1]) ** 2)
    res = lrjax.transfer(nnx_loss, lambda w, rngs: Net(w, rngs), BATCHES, optax.adam,
                         sizes=[4, 8, 16], target=64, num_steps=10, **RUN)  # fmt: skip
    assert res.optima.shape == (3,) and np.isfinite(res.rate)
    make = lambda w, key: eqx.nn.MLP(4, "scalar", w, depth=1, key=key)
    eqx_loss = lambda m, b: jnp.mean((jax.vmap(m)(b[0]) - b[1]) ** 2)
    res = lrjax.transfer(eqx_loss, make, BATCHES, optax.adam, sizes=[4, 8, 16], target=64,
                         num_steps=10, **RUN)  # fmt: skip
    assert res.sweeps[0].losses.shape == (2, 6, 10) and np.isfinite(res.rate)
    # the two seeds start from different initialisations
    assert not np.allclose(res.sweeps[0].losses[0, :, 0], res.sweeps[0].losses[1, :, 0])


BAD = [
    ({"sizes": [4, 8]}, ValueError, "sizes must hold at least 3"),
    ({"sizes": [4, 8, 8]}, ValueError, "sizes must be distinct"),
    ({"sizes": [0, 4, 8]}, ValueError, "sizes must be positive"),
    ({"target": -1}, ValueError, "target"),
    ({"along": "depth"}, ValueError, "along must be one of"),
    ({"model": mlp(4, jax.random.key(0))}, TypeError, "model must be a callable size -> model"),
    ({"model": lambda w: mlp(w, jax.random.key(0))}, ValueError, "seeds=2 draws one"),
    ({"model": lambda w, key: mlp(4, key)}, ValueError, "sizes: model(4) and model(8) have"),
    ({"along": "steps", "optimizer": optax.adam, "num_steps": None}, TypeError,
     "optimizer must take (learning_rate, num_steps)"),
    ({"along": "steps", "optimizer": cosine_adam}, ValueError, "num_steps=10: along='steps'"),
    ({"along": "steps", "sizes": [10, 20.5, 40], "num_steps": None}, TypeError, "sizes[1]"),
    ({"num_lrs": 2}, ValueError, "num_lrs must be >= 3"),
    ({"min_lr": 1.0, "max_lr": 0.1}, ValueError, "min_lr must be < max_lr"),
    ({"rule": "best"}, ValueError, "rule must be 'auto'"),
    ({"level": 1.5}, ValueError, "level must be in (0, 1)"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "error", "match"), BAD, ids=[m for _, _, m in BAD])
def test_bad_input_gets_one_line_naming_the_argument(change, error, match):
    kw = dict(model=mlp, optimizer=optax.adam, sizes=[4, 8, 16], target=64, num_steps=10,
              seeds=2, progress=False)  # fmt: skip
    kw.update(change)
    model, optimizer = kw.pop("model"), kw.pop("optimizer")
    if kw.get("along") == "steps" and callable(model) and model is mlp:
        model = lambda key: mlp(4, key)
    with pytest.raises(error) as info:
        lrjax.transfer(loss, model, BATCHES, optimizer, **kw)
    message = str(info.value)
    assert match in message and "\n" not in message and len(message) < 300, message


@pytest.mark.slow
def test_mup_keeps_the_best_rate_where_the_standard_parametrization_moves_it():
    """muP's promise, measured by transfer: the fitted width exponent's interval
    holds 0 for the muP MLP (Adam with scale_by_mup) and not for its standard
    twin (plain Adam), whose best rate falls as the width grows. Widths 64 to 512
    (4 to 32 times the base): at 16 to 128 the muP MLP's best rate still rises
    with width on short runs (finite-width effects, measured while choosing this
    test: exponents +0.2 to +0.5 over 100 to 400 steps), as muP's guarantee is a
    limit in width."""
    pytest.importorskip("flax.nnx")
    from mup_models import mup_adam, mup_mlp

    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 16, 8)).astype(np.float32)
    y = np.sin(x @ rng.normal(size=(8, 4))).astype(np.float32)
    mse = lambda m, b: jnp.mean((m(b[0]) - b[1]) ** 2)
    kw = dict(sizes=[64, 128, 256, 512], target=2048, num_steps=150, min_lr=1e-3, max_lr=0.3,
              num_lrs=9, seeds=3, progress=False)  # fmt: skip
    mup = lrjax.transfer(mse, lambda w, key: mup_mlp(w, key=key), (x, y), mup_adam, **kw)
    lo, hi = mup.fitted_exponent_interval
    assert lo <= 0 <= hi, (mup.fitted_exponent, mup.fitted_exponent_interval, mup.optima)
    standard = lambda w, key: mup_mlp(w, key=key, readout_mult=False, zero_readout=False)
    sp = lrjax.transfer(mse, standard, (x, y), optax.adam, **kw)
    assert sp.fitted_exponent_interval[1] < 0, (sp.fitted_exponent_interval, sp.optima)
