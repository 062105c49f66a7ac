"""Parallel mode: equals independent runs, isolates divergent copies, no recompiles."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from oracles import count_compiles

import lrjax
from lrjax import _engine


@pytest.mark.parametrize("opt_name", ["sgd", "momentum", "adam"])
def test_parallel_equals_independent_runs(helpers, tiny, opt_name):
    loss_fn, params, batches = tiny
    optimizer = {"sgd": optax.sgd, "momentum": helpers.momentum, "adam": optax.adam}[opt_name]
    hi = {"sgd": 30.0, "momentum": 30.0, "adam": 30.0}[opt_name]
    r = lrjax.range_test(
        loss_fn, params, batches, optimizer, min_lr=1e-3, max_lr=hi, num_lrs=6, num_steps=helpers.T
    )
    assert r.losses.shape == (1, 6, helpers.T)
    np.testing.assert_allclose(r.lrs, np.geomspace(1e-3, hi, 6))
    assert r.diverged.any() and not r.diverged.all()  # both regimes are exercised
    for k, lr in enumerate(r.lrs):
        losses, smoothed, stop = helpers.reference_run(
            loss_fn, params, batches, optimizer, lr, helpers.T
        )
        assert r.stop_step[0, k] == stop
        assert r.diverged[k] == (stop >= 0)
        np.testing.assert_array_equal(np.isnan(r.losses[0, k]), np.isnan(losses))
        np.testing.assert_allclose(r.losses[0, k], losses, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(r.smoothed[0, k], smoothed, rtol=2e-5, atol=1e-6)
        if stop < 0:
            w = max(1, helpers.T // 10)
            np.testing.assert_allclose(r.scores[k], np.mean(losses[-w:]), rtol=2e-5)
        else:
            assert r.scores[k] == math.inf


def test_callable_batches_equal_array_batches(tiny, helpers):
    loss_fn, params, (x, y) = tiny
    kw = dict(min_lr=1e-3, max_lr=10.0, num_lrs=4, num_steps=helpers.T)
    a = lrjax.range_test(loss_fn, params, (x, y), optax.sgd, **kw)
    b = lrjax.range_test(loss_fn, params, lambda t: (x[t], y[t]), optax.sgd, **kw)
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-6)


def test_divergent_copy_isolated_bit_for_bit(tiny, helpers):
    loss_fn, params, batches = tiny
    # geomspace(1e-3, 1e3, 7) minus its last rate is geomspace(1e-3, 1e2, 6). With
    # the same chunk_size every jitted call has the same shape, so the only
    # difference between the runs is the blown-up copy.
    kw = dict(num_steps=helpers.T, chunk_size=4)
    with_bad = lrjax.range_test(loss_fn, params, batches, optax.sgd, 1e-3, 1e3, 7, **kw)
    without = lrjax.range_test(loss_fn, params, batches, optax.sgd, 1e-3, 1e2, 6, **kw)
    np.testing.assert_array_equal(
        with_bad.lrs[:6].astype(np.float32), without.lrs.astype(np.float32)
    )
    assert with_bad.diverged[-1] and with_bad.stop_step[0, -1] <= 2
    assert not np.isfinite(with_bad.losses[0, -1]).all()
    np.testing.assert_array_equal(with_bad.losses[:, :6], without.losses)
    np.testing.assert_array_equal(with_bad.smoothed[:, :6], without.smoothed)
    np.testing.assert_array_equal(with_bad.stop_step[:, :6], without.stop_step)
    # Unchunked, the two runs have different batch sizes (7 vs 6 copies) and XLA
    # may pick other kernels: equal up to float32 rounding.
    a = lrjax.range_test(loss_fn, params, batches, optax.sgd, 1e-3, 1e3, 7, helpers.T)
    b = lrjax.range_test(loss_fn, params, batches, optax.sgd, 1e-3, 1e2, 6, helpers.T)
    np.testing.assert_allclose(a.losses[:, :6], b.losses, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(a.stop_step[:, :6], b.stop_step)


def _nan_past_threshold(p, batch):
    """Finite loss while |w1| stays small; NaN once any weight passes 3."""
    loss = lrjax_loss(p, batch)
    return jnp.where(jnp.max(jnp.abs(p["w1"])) > 3.0, jnp.nan, loss)


def lrjax_loss(p, batch):
    x, y = batch
    return jnp.mean((jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] - y) ** 2)


def test_nan_mid_run_isolated(tiny, helpers):
    _, params, batches = tiny
    grid_bad = {"learning_rate": [0.01, 8.0, 0.1]}  # the middle copy hits NaN mid-run
    grid_ok = {"learning_rate": [0.01, 0.05, 0.1]}
    grid_two = {"learning_rate": [0.01, 0.1]}

    def make(learning_rate):
        return optax.sgd(learning_rate)

    kw = dict(num_steps=helpers.T, combine="zip", diverge_factor=None)
    bad = lrjax.sweep(_nan_past_threshold, params, batches, make, grid_bad, **kw)
    ok = lrjax.sweep(_nan_past_threshold, params, batches, make, grid_ok, **kw)
    two = lrjax.sweep(_nan_past_threshold, params, batches, make, grid_two, **kw)
    stop = bad.stop_step[0, 1]
    assert 1 <= stop < helpers.T - 1  # NaN appears mid-run, not at the start
    assert np.isfinite(bad.losses[0, 1, :stop]).all()
    assert np.isnan(bad.losses[0, 1, stop:]).all()
    assert list(bad.diverged) == [False, True, False]
    assert bad.status[1] == "diverged"
    # same shapes, the bad copy replaced: bit for bit
    np.testing.assert_array_equal(bad.losses[:, [0, 2]], ok.losses[:, [0, 2]])
    np.testing.assert_array_equal(bad.smoothed[:, [0, 2]], ok.smoothed[:, [0, 2]])
    # the bad copy removed (another batch size): float32 rounding at most
    np.testing.assert_allclose(bad.losses[:, [0, 2]], two.losses, rtol=1e-6, atol=1e-7)
    # the frozen copy's numbers up to the NaN equal a reference run of that rate
    ref, _, ref_stop = helpers.reference_run(
        _nan_past_threshold, params, batches, optax.sgd, 8.0, helpers.T, factor=math.inf
    )
    assert ref_stop == stop
    np.testing.assert_allclose(bad.losses[0, 1, :stop], ref[:stop], rtol=2e-5)


def test_seeds_vmap_over_initialisations(helpers, tiny):
    loss_fn, _, batches = tiny
    kw = dict(min_lr=1e-2, max_lr=1.0, num_lrs=3, num_steps=helpers.T)
    r = lrjax.range_test(loss_fn, None, batches, optax.sgd, seeds=3, init_fn=helpers.init_mlp, **kw)
    assert r.losses.shape == (3, 3, helpers.T)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    per_seed, div = [], []
    for s in range(3):
        one = lrjax.range_test(loss_fn, helpers.init_mlp(keys[s]), batches, optax.sgd, **kw)
        np.testing.assert_allclose(r.losses[s], one.losses[0], rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(r.stop_step[s], one.stop_step[0])
        per_seed.append(one.scores)
        div.append(one.diverged)
    per_seed, div = np.array(per_seed), np.array(div).any(0)
    assert list(div) == [False, False, True]  # some seed diverges at the top rate
    np.testing.assert_array_equal(r.diverged, div)
    ok = ~div
    np.testing.assert_allclose(r.scores[ok], per_seed[:, ok].mean(0), rtol=1e-5)
    np.testing.assert_allclose(r.score_std[ok], per_seed[:, ok].std(0), rtol=1e-4, atol=1e-7)
    assert (r.score_std[ok] > 0).all()
    assert r.scores[div].tolist() == [math.inf] and r.status[div].tolist() == ["diverged"]


def test_chunked_equals_unchunked_and_pads(tiny, helpers):
    loss_fn, params, batches = tiny
    kw = dict(min_lr=1e-3, max_lr=1e2, num_lrs=7, num_steps=helpers.T)
    full = lrjax.range_test(loss_fn, params, batches, optax.adam, **kw)
    chunked = lrjax.range_test(loss_fn, params, batches, optax.adam, chunk_size=3, **kw)
    np.testing.assert_allclose(chunked.losses, full.losses, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(chunked.stop_step, full.stop_step)
    np.testing.assert_array_equal(chunked.status, full.status)


def test_keyboard_interrupt_returns_finished_chunks(tiny, helpers, monkeypatch):
    loss_fn, params, batches = tiny
    kw = dict(min_lr=1e-3, max_lr=1.0, num_lrs=8, num_steps=helpers.T, chunk_size=2)
    full = lrjax.range_test(loss_fn, params, batches, optax.sgd, **kw)
    calls = []

    def advance(self, n):
        calls.append(n)
        if len(calls) == 2:  # Ctrl-C while the third chunk runs
            raise KeyboardInterrupt

    monkeypatch.setattr(_engine.ProgressBar, "advance", advance)
    with pytest.warns(RuntimeWarning, match="4 of 8"):
        part = lrjax.range_test(loss_fn, params, batches, optax.sgd, **kw)
    assert part.interrupted and part.lrs.size == 4
    np.testing.assert_array_equal(part.losses, full.losses[:, :4])
    calls.clear()

    def interrupted_dispatch(*args, **kwargs):
        raise KeyboardInterrupt

    # Ctrl-C while the first chunk's inputs are placed on the device
    monkeypatch.setattr(_engine.Placement, "copies", interrupted_dispatch)
    with pytest.raises(KeyboardInterrupt):  # nothing finished: nothing to return
        lrjax.range_test(loss_fn, params, batches, optax.sgd, **kw)


def _count_engine_compiles(fn):
    return count_compiles(fn, "run_all")


def test_no_recompile_when_only_rates_change(tiny, helpers):
    loss_fn, params, batches = tiny
    kw = dict(num_lrs=5, num_steps=helpers.T)
    r1 = []
    first = _count_engine_compiles(
        lambda: r1.append(
            lrjax.range_test(
                loss_fn, params, batches, optax.adam, 1e-6, 0.5, diverge_factor=3, **kw
            )
        )
    )
    r2 = []
    again = _count_engine_compiles(
        lambda: r2.append(
            lrjax.range_test(
                loss_fn, params, batches, optax.adam, 1e-3, 10.0, diverge_factor=5, **kw
            )
        )
    )
    assert first <= 1 and again == 0  # the first may hit an earlier test's cache
    assert not np.allclose(r1[0].lrs, r2[0].lrs)
    # a new shape does compile: the counter is live
    other = _count_engine_compiles(
        lambda: lrjax.range_test(
            loss_fn, params, batches, optax.adam, 1e-3, 10.0, num_lrs=9, num_steps=helpers.T
        )
    )
    assert other == 1


def test_optimizer_variants(tiny, helpers):
    loss_fn, params, batches = tiny
    kw = dict(min_lr=1e-3, max_lr=0.1, num_lrs=3, num_steps=helpers.T)
    injected = lrjax.range_test(
        loss_fn, params, batches, optax.inject_hyperparams(optax.adam), **kw
    )
    plain = lrjax.range_test(loss_fn, params, batches, optax.adam, **kw)
    np.testing.assert_allclose(injected.losses, plain.losses, rtol=1e-4)

    def clipped(lr):
        return optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(lr, momentum=0.5))

    chained = lrjax.range_test(loss_fn, params, batches, clipped, **kw)
    for k, lr in enumerate(chained.lrs):  # each rate against a one-copy Python loop
        ref, _, _ = helpers.reference_run(loss_fn, params, batches, clipped, lr, kw["num_steps"])
        np.testing.assert_allclose(chained.losses[0, k], ref, rtol=1e-4, equal_nan=True)


def test_adabound_optimizer(tiny, helpers):
    loss_fn, params, batches = tiny
    r = lrjax.range_test(
        loss_fn,
        params,
        batches,
        lrjax.adabound,
        min_lr=1e-3,
        max_lr=1.0,
        num_lrs=3,
        num_steps=helpers.T,
    )
    ref, _, _ = helpers.reference_run(loss_fn, params, batches, lrjax.adabound, r.lrs[1], helpers.T)
    np.testing.assert_allclose(r.losses[0, 1], ref, rtol=2e-5, atol=1e-6)


def test_negative_losses_use_relative_rule(helpers):
    # loss = mse - 5: negative everywhere; with the plain "> 4 x best" rule every
    # copy would be marked diverged at step 1.
    params = helpers.init_mlp(jax.random.PRNGKey(1))
    batches = helpers.make_batches()
    r = lrjax.range_test(
        lambda p, b: helpers.mlp_loss(p, b) - 5.0,
        params,
        batches,
        optax.sgd,
        min_lr=1e-3,
        max_lr=0.1,
        num_lrs=3,
        num_steps=helpers.T,
    )
    assert not r.diverged.any()


@pytest.mark.parametrize(
    ("chunk_size", "eval_every"),
    [(None, None), (2, None), (None, 5)],
    ids=["one-chunk", "chunks-replay-the-stream", "eval-every-5"],
)
def test_a_stream_of_several_blocks_equals_the_reference_at_every_step(
    helpers, chunk_size, eval_every
):
    """A stream of 70 batches (blocks of 32 steps, the last one partial; with
    ``eval_every=5`` calls of 30 steps) is read once, in order, and gives at
    every step, 32 and later included, the losses and smoothed losses of a
    Python loop over the same batches and of the same batches stacked."""
    steps = 70
    x, y = helpers.make_batches(steps=steps, seed=3)
    x, y = np.asarray(x), np.asarray(y)
    params = helpers.init_mlp(jax.random.PRNGKey(1))
    read = []

    def stream():
        for t in range(steps + 5):  # longer than needed: only num_steps are read
            read.append(t)
            yield x[t], y[t]

    kw = dict(min_lr=1e-3, max_lr=0.1, num_lrs=3, num_steps=steps, chunk_size=chunk_size)
    if eval_every is not None:
        kw.update(eval_every=eval_every, val_batches=(x[:2], y[:2]))
    r = lrjax.range_test(helpers.mlp_loss, params, stream(), helpers.momentum, **kw)
    assert read == list(range(steps))
    stacked = lrjax.range_test(helpers.mlp_loss, params, (x, y), helpers.momentum, **kw)
    # float32 both ways; the streamed calls are other XLA programs (CPU code differs)
    np.testing.assert_allclose(r.losses, stacked.losses, rtol=1e-5)
    np.testing.assert_allclose(r.smoothed, stacked.smoothed, rtol=1e-5)
    for k, lr in enumerate(r.lrs):
        losses, smoothed, stop = helpers.reference_run(
            helpers.mlp_loss, params, (x, y), helpers.momentum, lr, steps
        )
        assert stop == -1 and r.stop_step[0, k] == -1
        # float64 EMA in the reference, float32 in the engine, over 70 steps
        np.testing.assert_allclose(r.losses[0, k], losses, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(r.smoothed[0, k], smoothed, rtol=2e-5, atol=1e-6)
