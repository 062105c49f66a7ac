"""The ramp (``lr_find``) vs a hand-written fastai-style loop, and its suggestions;
the deprecated ``range_test(mode="sweep")`` shim that runs it."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_suggest import REFERENCE

import lrjax


def fastai_style_loop(loss_fn, params, batches, make_tx, lrs, factor=4.0):
    """fastai's LRFinder, written out: an Optax schedule drives the rate, the
    Recorder appends the debiased smoothed loss, the finder stops after
    recording a smoothed loss above factor x best (or a non-finite loss)."""
    sched = jnp.asarray(lrs, jnp.float32)
    tx = make_tx(lambda count: sched[count])
    state = tx.init(params)

    @jax.jit
    def step(p, s, b):
        loss, g = jax.value_and_grad(loss_fn)(p, b)
        u, s = tx.update(g, s, p)
        return loss, optax.apply_updates(p, u), s

    raw, smooth_rec = [], []
    val, best, stop = 0.0, math.inf, -1
    for t in range(len(lrs)):
        count = t + 1
        loss, params, state = step(params, state, jax.tree.map(lambda x: x[t], batches))
        loss = float(loss)
        val = loss + 0.98 * (val - loss)  # torch.lerp(loss, val, beta)
        smooth = val / (1 - 0.98**count)
        raw.append(loss)
        smooth_rec.append(smooth)
        if smooth < best:
            best = smooth
        if smooth > factor * best or not math.isfinite(loss) or not math.isfinite(smooth):
            stop = t
            break
    return raw, smooth_rec, stop


def fastai_lr_find_slice(lrs, recorded, num_it):
    """fastai's lr_find: [num_it//10 : -5] of the recorded values, cut at the first NaN."""
    lrs = list(lrs[: len(recorded)])[num_it // 10 : -5]
    values = list(recorded)[num_it // 10 : -5]
    for i, v in enumerate(values):
        if not math.isfinite(v):
            return lrs[:i], values[:i]
    return lrs, values


@pytest.mark.parametrize(
    "step_mode,make_tx,max_lr",
    [
        ("exp", optax.sgd, 50.0),
        ("exp", optax.adam, 100.0),
        ("linear", lambda lr: optax.sgd(lr, momentum=0.9), 2.0),
    ],
)
def test_ramp_equals_reference_loop(helpers, tiny, step_mode, make_tx, max_lr):
    loss_fn, params, _ = tiny
    T = 40
    batches = helpers.make_batches(T, seed=3)
    r = lrjax.lr_find(
        loss_fn,
        params,
        batches,
        make_tx,
        min_lr=1e-3,
        max_lr=max_lr,
        num_steps=T,
        step_mode=step_mode,
    )
    frac = [t / (T - 1) for t in range(T)]
    if step_mode == "exp":
        want_lrs = [1e-3 * (max_lr / 1e-3) ** f for f in frac]
    else:
        want_lrs = [1e-3 + (max_lr - 1e-3) * f for f in frac]
    np.testing.assert_allclose(r.lrs, want_lrs, rtol=1e-12)
    raw, smooth, stop = fastai_style_loop(loss_fn, params, batches, make_tx, want_lrs)
    n = len(raw)
    assert r.stop_step == stop
    assert 10 < stop < T - 5  # the ramps above do diverge, late enough for a curve
    # The engine (vmap + scan) and the loop (one jitted step) round differently,
    # by float32 rounding (rtol 2e-5) while the loss stays within 4x its first
    # value. Past that the copy is diverging: each step multiplies a rounding
    # difference by about the loss's growth (10x per step at the end here), so
    # the last steps (loss 12 and 128 under Adam at max_lr=100) differ between
    # CPU instruction sets by up to 1.1e-4 (measured: 4e-5 on an AVX2 EPYC, 1.1e-4
    # under --xla_cpu_max_isa=SSE4_2); rtol 1e-3 there.
    calm = np.asarray(raw) <= 4 * raw[0]
    for got, want in ((r.losses[:n], raw), (r.smoothed[:n], smooth)):
        want = np.asarray(want)
        np.testing.assert_allclose(got[calm], want[calm], rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(got[~calm], want[~calm], rtol=1e-3)
    assert np.isnan(r.losses[n:]).all() and np.isnan(r.smoothed[n:]).all()
    assert (r.status[n - 1 :] == "diverged").all() and (r.status[: n - 1] != "diverged").all()
    assert r.diverged.tolist() == [t >= n - 1 for t in range(T)]
    # the suggestions are fastai's, on fastai's slice of the recorded smoothed loss
    lrs_s, vals_s = fastai_lr_find_slice(r.lrs, smooth, T)
    got_lrs, got_vals = r.curve()
    np.testing.assert_allclose(got_lrs, lrs_s, rtol=1e-12)
    np.testing.assert_allclose(got_vals, vals_s, rtol=2e-5)
    for method in ("minimum", "steep", "valley"):
        want = REFERENCE[method](list(got_lrs), list(got_vals))[0]
        assert r.suggest(method) == pytest.approx(want, rel=1e-12)
    assert r.best_lr == r.suggest("valley")


def test_ramp_without_divergence_runs_all_steps(tiny, helpers):
    loss_fn, params, batches = tiny
    r = lrjax.lr_find(
        loss_fn, params, batches, optax.sgd, min_lr=1e-4, max_lr=1e-2, num_steps=helpers.T
    )
    assert r.stop_step == -1 and np.isfinite(r.losses).all()
    assert r.lrs[0] == pytest.approx(1e-4) and r.lrs[-1] == pytest.approx(1e-2)
    lrs, _ = r.curve()
    assert lrs.size == helpers.T - helpers.T // 10 - 5


def test_ramp_that_stops_immediately_has_no_suggestion(tiny, helpers):
    loss_fn, params, batches = tiny
    r = lrjax.lr_find(
        loss_fn, params, batches, optax.sgd, min_lr=1e2, max_lr=1e4, num_steps=helpers.T
    )
    assert 0 < r.stop_step < 4
    with pytest.raises(ValueError, match="stopped at step"):
        r.suggest()
    assert r.best_lr is None


def test_sweep_mode_is_deprecated_and_runs_lr_find(tiny, helpers):
    loss_fn, params, batches = tiny
    kw = dict(min_lr=1e-3, max_lr=50.0, num_steps=helpers.T)
    with pytest.warns(DeprecationWarning, match="lr_find"):
        old = lrjax.range_test(loss_fn, params, batches, optax.sgd, mode="sweep", **kw)
    new = lrjax.lr_find(loss_fn, params, batches, optax.sgd, **kw)
    assert isinstance(old, lrjax.RampResult)
    np.testing.assert_array_equal(old.losses, new.losses)  # the same program, same inputs
    assert old.stop_step == new.stop_step


def test_sweep_mode_rejects_parallel_options(tiny):
    loss_fn, params, batches = tiny
    with pytest.warns(DeprecationWarning):
        with pytest.raises(ValueError, match="seeds"):
            lrjax.range_test(loss_fn, params, batches, mode="sweep", seeds=2, num_steps=5)
        with pytest.raises(ValueError, match="chunk_size"):
            lrjax.range_test(loss_fn, params, batches, mode="sweep", chunk_size=2, num_steps=5)
        with pytest.raises(ValueError, match=r"^val_batches apply to mode='parallel' only"):
            lrjax.range_test(loss_fn, params, batches, mode="sweep", val_batches=batches)
    with pytest.raises(ValueError, match="step_mode"):
        lrjax.lr_find(loss_fn, params, batches, step_mode="cos", num_steps=5)
