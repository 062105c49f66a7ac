"""Faults in one copy stay in that copy; errors surface; interrupts keep finished work.

* A NaN that appears mid-run in one copy of the range test (an optimizer that
  poisons exactly one rate's update at one step, or a loss that turns NaN once
  the parameters leave a region) freezes that copy only: every other copy's
  losses are bit for bit those of a run without the fault (same chunking).
* A ``loss_fn`` that raises, at trace time or at run time on one batch (via a
  host callback), ends the call with an error carrying the original message,
  does not hang, and leaves lrjax usable.
* A ``KeyboardInterrupt`` in a long chunked run (from the progress callback or
  while a chunk is dispatched) returns the chunks already finished, equal to
  the same chunks of an uninterrupted run, flagged ``interrupted``.
"""

from __future__ import annotations

import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax import _engine
from lrjax._engine import ProgressBar

T = 16
K = 8
LO, HI = 1e-3, 3.0


def problem():
    x = jax.random.normal(jax.random.PRNGKey(0), (T, 16, 4))
    y = jnp.sin(x.sum(-1))
    params = {
        "w1": jax.random.normal(jax.random.PRNGKey(1), (4, 8)) * 0.5,
        "w2": jax.random.normal(jax.random.PRNGKey(2), (8,)) * 0.5,
    }

    def loss_fn(p, b):
        return jnp.mean((jnp.tanh(b[0] @ p["w1"]) @ p["w2"] - b[1]) ** 2)

    return loss_fn, params, (x, y)


def rates32():
    """The rates as the engine sees them (float32 of the log-spaced grid)."""
    return np.geomspace(LO, HI, K).astype(np.float32)


def poisoned(target: float, at_step: int):
    """``lr -> momentum SGD`` whose update is NaN at ``at_step`` for rate ``target`` only."""

    def make(lr):
        def init(params):
            return jnp.zeros((), jnp.int32)

        def update(updates, count, params=None):
            hit = (lr == target) & (count == at_step)
            updates = jax.tree.map(lambda u: jnp.where(hit, jnp.nan, u), updates)
            return updates, count + 1

        return optax.chain(optax.sgd(lr, momentum=0.9), optax.GradientTransformation(init, update))

    return make


def run(loss_fn, params, batches, optimizer, **kw):
    kw = {"min_lr": LO, "max_lr": HI, "num_lrs": K, "num_steps": T, "progress": False, **kw}
    return lrjax.range_test(loss_fn, params, batches, optimizer, **kw)


def assert_same(a, b):
    np.testing.assert_array_equal(a, b)  # bitwise, NaN where NaN


@pytest.mark.parametrize("chunk_size", [None, 3])
@pytest.mark.parametrize("k", [0, 5])
def test_nan_mid_run_in_one_copy_leaves_the_others_bit_identical(k, chunk_size):
    loss_fn, params, batches = problem()
    bad = run(loss_fn, params, batches, poisoned(rates32()[k], 5), chunk_size=chunk_size)
    clean = run(loss_fn, params, batches, poisoned(-1.0, 5), chunk_size=chunk_size)
    others = [j for j in range(K) if j != k]
    assert_same(bad.losses[:, others], clean.losses[:, others])
    assert_same(bad.smoothed[:, others], clean.smoothed[:, others])
    assert_same(bad.stop_step[:, others], clean.stop_step[:, others])
    assert_same(bad.scores[others], clean.scores[others])
    assert_same(bad.diverged[others], clean.diverged[others])
    # The poisoned copy: same up to the poisoned update, then frozen and marked.
    assert_same(bad.losses[0, k, :6], clean.losses[0, k, :6])
    assert np.isnan(bad.losses[0, k, 6:]).all()
    assert bad.stop_step[0, k] == 6
    assert bad.diverged[k] and bad.status[k] == "diverged" and bad.scores[k] == np.inf
    assert np.isfinite(clean.losses[0, k]).all()


def test_nan_from_the_loss_itself_mid_run():
    """A loss that turns NaN once a copy's weights grow: only those copies change."""
    loss_fn, params, batches = problem()

    def fragile(p, b):
        blown = jnp.max(jnp.abs(p["w2"])) > 1.5
        return jnp.where(blown, jnp.nan, loss_fn(p, b))

    clean = run(loss_fn, params, batches, optax.sgd, diverge_factor=None)
    bad = run(fragile, params, batches, optax.sgd, diverge_factor=None)
    hit = np.isnan(bad.losses[0]).any(axis=1)
    assert 0 < hit.sum() < K  # the test only means something if some copies are hit
    assert not np.isnan(bad.losses[0, :, 0]).any()  # mid-run, not at the start
    assert_same(bad.losses[:, ~hit], clean.losses[:, ~hit])
    assert_same(bad.scores[~hit], clean.scores[~hit])
    assert bad.diverged[hit].all() and not bad.diverged[~hit].any()
    for j in np.flatnonzero(hit):  # finite up to the stop, NaN from it
        stop = bad.stop_step[0, j]
        assert_same(bad.losses[0, j, :stop], clean.losses[0, j, :stop])
        assert np.isnan(bad.losses[0, j, stop:]).all()


def test_nan_in_one_copy_with_seeds_and_in_lrjax_sweep():
    loss_fn, params, batches = problem()

    def init_fn(key):
        return jax.tree.map(lambda p: p + 0.1 * jax.random.normal(key, p.shape), params)

    target = rates32()[3]
    kw = {"params": None, "init_fn": init_fn, "seeds": 2}
    bad = lrjax.range_test(
        loss_fn,
        batches=batches,
        optimizer=poisoned(target, 4),
        **{"min_lr": LO, "max_lr": HI, "num_lrs": K, "num_steps": T, "progress": False, **kw},
    )
    clean = lrjax.range_test(
        loss_fn,
        batches=batches,
        optimizer=poisoned(-1.0, 4),
        **{"min_lr": LO, "max_lr": HI, "num_lrs": K, "num_steps": T, "progress": False, **kw},
    )
    others = [j for j in range(K) if j != 3]
    assert_same(bad.losses[:, others], clean.losses[:, others])
    assert (bad.stop_step[:, 3] == 5).all() and bad.diverged[3]

    # lrjax.sweep: the same fault in one grid setting.
    def make(learning_rate, momentum):
        return optax.chain(
            optax.sgd(learning_rate, momentum=momentum),
            poisoned_identity(learning_rate, momentum, 0.1, 0.5, 7),
        )

    grid = {"learning_rate": [0.01, 0.1, 0.3], "momentum": [0.0, 0.5]}
    s_bad = lrjax.sweep(loss_fn, params, batches, make, grid, progress=False)
    s_clean = lrjax.sweep(
        loss_fn,
        params,
        batches,
        lambda learning_rate, momentum: optax.chain(
            optax.sgd(learning_rate, momentum=momentum),
            poisoned_identity(learning_rate, momentum, -1.0, -1.0, 7),
        ),
        grid,
        progress=False,
    )
    hit = (np.isclose(s_bad.grid["learning_rate"], 0.1)) & (s_bad.grid["momentum"] == 0.5)
    assert hit.sum() == 1
    assert_same(s_bad.losses[:, ~hit], s_clean.losses[:, ~hit])
    assert s_bad.diverged[hit].all() and s_bad.stop_step[0, hit][0] == 8


def poisoned_identity(lr, mom, lr_target, mom_target, at_step):
    lr_target = np.float32(lr_target)

    def init(params):
        return jnp.zeros((), jnp.int32)

    def update(updates, count, params=None):
        hit = (lr == lr_target) & (mom == np.float32(mom_target)) & (count == at_step)
        return jax.tree.map(lambda u: jnp.where(hit, jnp.nan, u), updates), count + 1

    return optax.GradientTransformation(init, update)


# ---------------------------------------------------------------- raising losses


def call_with_guard(fn, seconds=300):
    """Runs ``fn`` in a daemon thread: returns its exception; a hang fails the test."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:
            box["error"] = e

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(seconds)
    assert not th.is_alive(), "the call hung"
    return box


def test_loss_fn_raising_on_one_batch_at_run_time():
    loss_fn, params, (x, y) = problem()
    idx = np.arange(T, dtype=np.int32)

    def check(t):
        if int(t) == 7:
            raise RuntimeError("corrupt record in batch 7")
        return np.float32(0.0)

    def host_checked_loss(p, b):
        x, y, t = b
        z = jax.pure_callback(check, jax.ShapeDtypeStruct((), jnp.float32), t)
        return loss_fn(p, (x, y)) + z

    calls = {
        "range_test": lambda: run(host_checked_loss, params, (x, y, idx), optax.sgd),
        "chunk_size=3": lambda: run(
            host_checked_loss, params, (x, y, idx), optax.sgd, chunk_size=3
        ),
        "lr_find": lambda: lrjax.lr_find(
            host_checked_loss, params, (x, y, idx), optax.sgd, num_steps=T, progress=False
        ),
    }
    for what, call in calls.items():
        box = call_with_guard(call)
        assert "value" not in box, f"no error with {what}"
        err = box["error"]
        assert isinstance(err, Exception) and not isinstance(err, KeyboardInterrupt)
        assert "corrupt record in batch 7" in str(err), str(err)[:500]
    # lrjax is still usable afterwards, and the same checks pass on clean data.
    ok = run(host_checked_loss, params, (x, y, idx + 100), optax.sgd)
    assert np.isfinite(ok.losses[0, 0]).all()


def test_loss_fn_raising_at_trace_time():
    _, params, batches = problem()

    class UserLossError(Exception):
        pass

    def raises(p, b):
        raise UserLossError("the user's own error")

    with pytest.raises(UserLossError, match="the user's own error"):
        run(raises, params, batches, optax.sgd)

    def bad_shapes(p, b):
        return jnp.mean(b[0] @ p["w2"])  # [16, 4] @ [8]: a shape mismatch

    with pytest.raises(TypeError, match=r"loss_fn\(params, batch\) failed") as info:
        run(bad_shapes, params, batches, optax.sgd)
    assert "dot_general" in str(info.value.__cause__)


# ---------------------------------------------------------------- interrupts


def interrupt_on_call(n):
    """A replacement for ``ProgressBar.advance`` raising KeyboardInterrupt on call ``n``."""
    calls = [0]
    original = ProgressBar.advance

    def advance(self, k):
        calls[0] += 1
        if calls[0] == n:
            raise KeyboardInterrupt
        original(self, k)

    return advance


def test_interrupt_from_the_progress_callback_keeps_finished_chunks(monkeypatch):
    loss_fn, params, batches = problem()
    full = run(loss_fn, params, batches, optax.sgd, chunk_size=3)
    monkeypatch.setattr(ProgressBar, "advance", interrupt_on_call(2))
    with pytest.warns(RuntimeWarning, match="interrupted: returning the 6 of 8"):
        part = run(loss_fn, params, batches, optax.sgd, chunk_size=3)
    assert part.interrupted and not full.interrupted
    assert part.lrs.shape == (6,)
    assert_same(part.lrs, full.lrs[:6])
    assert_same(part.losses, full.losses[:, :6])
    assert_same(part.scores, full.scores[:6])
    assert part.suggest("valley") > 0  # the partial result is usable


def test_interrupt_while_dispatching_a_chunk(monkeypatch):
    loss_fn, params, batches = problem()
    full = run(loss_fn, params, batches, optax.sgd, chunk_size=2)
    calls = [0]
    original = _engine.Placement.copies

    def place_then_interrupt(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 5:  # two placements per chunk: Ctrl-C while dispatching the third
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_engine.Placement, "copies", place_then_interrupt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        part = run(loss_fn, params, batches, optax.sgd, chunk_size=2)
    assert any("interrupted" in str(w.message) for w in caught)
    n = part.lrs.size
    assert part.interrupted and 2 <= n < K and n % 2 == 0
    assert_same(part.losses, full.losses[:, :n])

    # lrjax.sweep keeps its finished settings the same way.
    calls[0] = 0
    grid = {"learning_rate": list(rates32())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = lrjax.sweep(
            loss_fn, params, batches, lambda learning_rate: optax.sgd(learning_rate), grid,
            chunk_size=2, progress=False,
        )  # fmt: skip
    assert res.interrupted and res.losses.shape[1] == res.grid["learning_rate"].size < K


def test_interrupt_before_any_chunk_finished_propagates(monkeypatch):
    loss_fn, params, batches = problem()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_engine.Placement, "copies", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(loss_fn, params, batches, optax.sgd, chunk_size=3)
    with pytest.raises(KeyboardInterrupt):
        lrjax.lr_find(loss_fn, params, batches, optax.sgd, min_lr=1e-3, num_steps=T)
