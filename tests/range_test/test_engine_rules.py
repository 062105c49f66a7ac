"""The engine's divergence rules against a brute-force Python reference.

Each copy is handed a prescribed loss sequence (random, with negative values,
spikes and non-finite values planted), so the rules are tested on their own,
not through whatever a model happens to do:

- ``loss_fn`` reads copy ``k``'s loss at step ``t`` from the batch: the copy's
  index lives in its parameters (drawn per seed by ``init_fn``), and its
  weight ``w`` moves by exactly ``+1`` per applied update (a custom transform),
  so ``w`` counts the updates a copy received;
- the reference walks each sequence in Python: float32 EMA (beta 0.98),
  debiased, ``best`` its running minimum, stop at the first step whose loss or
  smoothed loss is not finite or whose smoothed loss rises above
  ``factor * best`` (``best >= 0``) or by more than ``(factor - 1) * |best|``
  (``best < 0``).

Expected: the stop step, the losses and smoothed losses up to and including
it, NaN after it, and ``w`` frozen at the value it had at the stop step (the
update of the stop step is not applied), bit for bit.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax

BETA = np.float32(0.98)


def reference(losses, factor):
    """``(stop_step, smoothed)`` of one loss sequence, by the documented rule."""
    ema = np.float32(0.0)
    best = np.float32(np.inf)
    smoothed = []
    for t, loss in enumerate(np.asarray(losses, np.float32)):
        ema = np.float32(BETA * ema + (np.float32(1) - BETA) * loss)
        smooth = np.float32(ema / (np.float32(1) - BETA ** np.float32(t + 1)))
        smoothed.append(smooth)
        best = min(best, smooth)
        if not (math.isfinite(loss) and math.isfinite(smooth)):
            return t, np.array(smoothed)
        if factor is not None:
            over = smooth > factor * best if best >= 0 else smooth - best > (factor - 1) * -best
            if over:
                return t, np.array(smoothed)
    return -1, np.array(smoothed)


def margin(losses, factor):
    """How close the sequence comes to the threshold, relative to |best|."""
    ema, best, closest = 0.0, math.inf, math.inf
    for t, loss in enumerate(losses):
        ema = 0.98 * ema + 0.02 * loss
        smooth = ema / (1 - 0.98 ** (t + 1))
        best = min(best, smooth)
        if not math.isfinite(smooth):
            break
        limit = factor * best if best >= 0 else best + (factor - 1) * -best
        closest = min(closest, abs(smooth - limit) / max(abs(best), 1e-12))
        if smooth > limit:
            break
    return closest


def sequences(n, T, seed):
    """Random loss sequences: drifts, noise, negative levels, spikes, NaN/inf."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, T), np.float32)
    for i in range(n):
        level = rng.choice([1.0, 0.1, -1.0, -0.05, 5.0])
        drift = rng.normal(0, 0.2) * abs(level)
        walk = level + drift * np.arange(T) / T + rng.normal(0, 0.1, T).cumsum() * abs(level) * 0.3
        kind = rng.integers(0, 4)
        if kind == 1:  # a spike
            t = rng.integers(1, T)
            walk[t:] += rng.uniform(2, 20) * abs(level)
        elif kind == 2:  # a non-finite loss
            walk[rng.integers(0, T)] = rng.choice([np.nan, np.inf, -np.inf])
        elif kind == 3:  # exponential blow-up
            t = rng.integers(1, T)
            walk[t:] *= np.exp(np.arange(T - t) * rng.uniform(0.1, 1.0))
        out[i] = walk
    return out


class PlusOne(optax.GradientTransformation):
    """Adds exactly 1 to ``w`` at every applied update (and nothing to the index)."""

    def __new__(cls):
        def update(grads, state, params=None):
            return {"k": jnp.zeros_like(grads["k"]), "w": jnp.ones_like(grads["w"])}, state

        return super().__new__(cls, lambda p: optax.EmptyState(), update)


def run_engine(losses, factor):
    """Every sequence as one seed of one rate; returns the parallel result.

    The evaluation batches score every live copy 1.0 (``loss_fn`` reads row
    ``k`` of a batch of ones), so a NaN validation loss can only be a mask.
    """
    T, n = losses.shape
    keys = jax.random.split(jax.random.PRNGKey(0), n)  # the seeds' keys, as documented

    def init_fn(key):
        k = jnp.argmax(jnp.all(keys == key, axis=-1))
        return {"k": k.astype(jnp.float32), "w": jnp.zeros((), jnp.float32)}

    def loss_fn(p, batch):
        return batch[p["k"].astype(jnp.int32)] + 0.0 * p["w"]

    return lrjax.range_test(
        loss_fn, None, jnp.asarray(losses), lambda lr: PlusOne(), min_lr=1e-3, max_lr=1e-2,
        num_lrs=1, num_steps=T, seeds=n, init_fn=init_fn, diverge_factor=factor,
        return_params=True, val_batches=jnp.ones((2, n)),
    )  # fmt: skip


@pytest.mark.parametrize("factor", [4.0, 1.5, None])
def test_rules_equal_the_reference_on_random_sequences(factor):
    T = 40
    losses = sequences(96, T, seed=int(0 if factor is None else factor * 10))
    if factor is not None:  # float32 vs float64 at the threshold: keep clear cases only
        keep = [margin(s, factor) > 1e-4 for s in losses]
        losses = losses[np.array(keep)]
    r = run_engine(losses.T.copy(), factor)
    n = losses.shape[0]
    stops = []
    for i in range(n):
        stop, smoothed = reference(losses[i], factor)
        stops.append(stop)
        got_loss, got_smooth = r.losses[i, 0], r.smoothed[i, 0]
        end = T if stop < 0 else stop + 1  # the stop step's loss is recorded
        assert int(r.stop_step[i, 0]) == stop, i
        np.testing.assert_array_equal(got_loss[:end], losses[i, :end])
        # float32 EMA rounding (XLA may fuse a multiply-add) is relative to the
        # losses' scale, not to the smoothed value, which can cross zero.
        finite = np.isfinite(smoothed[:end])
        scale = np.abs(losses[i, :end][np.isfinite(losses[i, :end])]).max(initial=1.0)
        np.testing.assert_allclose(
            got_smooth[:end][finite], smoothed[:end][finite], rtol=1e-6, atol=1e-6 * scale
        )
        assert np.isnan(got_loss[end:]).all() and np.isnan(got_smooth[end:]).all()  # sticky
        # w counts applied updates: a stopped copy kept its stop step's parameters
        w = float(r.params["w"][i, 0])
        assert w == (T if stop < 0 else stop), (i, w, stop)
        # a diverged copy has no validation score; a live one is evaluated
        val = float(r.val_losses[i, 0])
        assert np.isnan(val) if stop >= 0 else val == 1.0, (i, val, stop)
    stops = np.array(stops)
    # the battery exercises every rule: no stop, stops on non-finite values, and,
    # with a factor, stops on a rise from a positive and from a negative best
    assert (stops < 0).any() and (stops >= 0).any()
    if factor is not None:
        neg = [i for i in range(n) if stops[i] > 0 and np.isfinite(losses[i, : stops[i] + 1]).all()
               and reference(losses[i, : stops[i]], None)[1].min() < 0]  # fmt: skip
        assert neg, "no sequence stopped on a rise from a negative best"
    assert r.diverged.any() == (stops >= 0).any()


def test_negative_best_rule_by_hand():
    """A negative plateau, then a rise: the stop step follows ``(f - 1) * |best|``."""
    T = 30
    seq = np.full(T, -1.0, np.float32)
    seq[10:] = 0.5  # smoothed rises from -1 toward 0.5
    stop, _ = reference(seq, 1.5)  # allowed rise: 0.5 * |best| = 0.5
    assert 10 < stop < T
    r = run_engine(seq[:, None].copy(), 1.5)
    assert int(r.stop_step[0, 0]) == stop
    # a positive-best reading (smooth > f * best) would stop at once, at step 10
    assert stop != 10
    never, _ = reference(seq, None)
    assert never == -1 and int(run_engine(seq[:, None].copy(), None).stop_step[0, 0]) == -1


def test_sweep_grid_order_is_c_order_of_the_names():
    """``grid`` flattens like ``np.meshgrid(..., indexing="ij")``: the last name
    varies fastest, and each copy trains with its own setting (the final weight
    of ``w -= a * 1 + b * 10`` per step identifies the pair)."""
    T = 3

    def make(a, b):
        def update(g, s, p=None):
            return jax.tree.map(lambda x: jnp.full_like(x, -(a + 10.0 * b)), g), s

        return optax.GradientTransformation(lambda p: optax.EmptyState(), update)

    res = lrjax.sweep(
        lambda w, batch: jnp.sum(w) * 0.0 + batch, jnp.zeros(()), jnp.ones(T), make,
        {"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0]}, return_params=True,
    )  # fmt: skip
    expected_a = [1, 1, 2, 2, 3, 3]
    expected_b = [0, 1, 0, 1, 0, 1]
    np.testing.assert_array_equal(res.grid["a"], expected_a)
    np.testing.assert_array_equal(res.grid["b"], expected_b)
    final = res.params[0]
    np.testing.assert_array_equal(
        final, [-T * (a + 10 * b) for a, b in zip(expected_a, expected_b)]
    )
    assert res.shape == (3, 2)
    assert lrjax._sweep.grid_settings({"a": [1, 2], "b": [0, 1]})[1] == {"a": 1, "b": 1}
