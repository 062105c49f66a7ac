"""Models as their libraries write them (docs/frameworks.md), against hand-written loops.

Each test runs a snippet of ``docs/snippets/frameworks/`` (its example must run)
and takes the snippet's own model, loss and data. The references are written as
each library's tutorials write a training loop: NNX with ``nnx.Optimizer`` and
``nnx.value_and_grad`` under ``nnx.jit``, Equinox with ``eqx.filter_value_and_grad``
and ``eqx.apply_updates`` under ``eqx.filter_jit``, one copy (one rate) at a time,
evaluated in the library's eval mode. Where randomness is drawn, the reference
draws it as the docs page says: copy ``i``'s key is ``fold_in(key, i)``, step
``t``'s ``fold_in(copy_key, t)``, and ``rngs`` is ``nnx.Rngs(step_key)``.

Tolerances: everything is float32. The engine's program (copies vmapped; on a
CPU a convolution over per-copy weights is a grouped convolution) and the
reference's (one copy, per-step jit) are compiled differently, so they round
differently in the last bits (XLA's CPU code also depends on the vector
instructions available); over a few SGD steps at moderate rates that stays
far below rtol 1e-4 of the loss values. The tests train with SGD, not Adam:
the tutorial models put a bias before BatchNorm, whose gradient is zero in
exact arithmetic, and Adam divides that gradient's rounding noise by its own
size, so the bias (and the running mean it feeds, hence the eval-mode loss)
takes full-size steps of random sign in each program. Results of one program
compiled once (same key twice) are compared exactly.
"""

from __future__ import annotations

import functools
import runpy
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax

eqx = pytest.importorskip("equinox")
nnx = pytest.importorskip("flax.nnx")
torch = pytest.importorskip("torch")

SNIPPETS = Path(__file__).resolve().parent.parent / "docs" / "snippets" / "frameworks"
RTOL = 1e-4  # see the module docstring
STEPS = 6
LRS = dict(min_lr=1e-2, max_lr=1e-1, num_lrs=3, optimizer=optax.sgd)  # no copy diverges


@functools.cache
def snippet(name: str) -> dict:
    """The globals of ``docs/snippets/frameworks/<name>.py`` after running it."""
    return runpy.run_path(str(SNIPPETS / f"{name}.py"), run_name=f"frameworks_{name}")


def step_key(key, copy: int, t: int):
    """The documented per-copy, per-step key."""
    return jax.random.fold_in(jax.random.fold_in(key, copy), t)


def batch_at(tree, t):
    return jax.tree.map(lambda x: x[t], tree)


def n_batches(tree) -> int:
    return jax.tree.leaves(tree)[0].shape[0]


# ------------------------------------------------------------------ Flax NNX


def nnx_reference(make_model, loss_fn, train, val, lrs, key):
    """The Flax tutorial's loop, one rate at a time: train losses [K, T], val [K]."""

    @nnx.jit
    def train_step(model, optimizer, batch, k):
        grad_fn = nnx.value_and_grad(loss_fn, has_aux=True)
        (loss, _), grads = grad_fn(model, batch, nnx.Rngs(k))
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def eval_step(model, batch):
        return loss_fn(model, batch, None)[0]

    losses, vals = [], []
    for i, lr in enumerate(lrs):
        model = nnx.view(make_model(), deterministic=False, use_running_average=False)
        tx = optax.inject_hyperparams(optax.sgd)(learning_rate=lr)  # lr as data: one compile
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
        losses.append(
            [
                float(train_step(model, optimizer, batch_at(train, t), step_key(key, i, t)))
                for t in range(STEPS)
            ]
        )
        eval_model = nnx.view(model, deterministic=True, use_running_average=True)
        vals.append(
            np.mean([float(eval_step(eval_model, batch_at(val, j))) for j in range(n_batches(val))])
        )
    return np.array(losses), np.array(vals)


def nnx_run(ns, dropout, key):
    model = ns["CNN"](dropout=dropout, rngs=nnx.Rngs(0))
    train_model = nnx.view(model, deterministic=False, use_running_average=False)
    return lrjax.range_test(
        ns["loss_fn"],
        train_model,
        ns["train"],
        num_steps=STEPS,
        has_aux=True,
        val_batches=ns["val"],
        key=key,
        progress=False,
        **LRS,
    )


@pytest.mark.parametrize("dropout", [0.0, 0.25])
def test_nnx_tutorial_cnn_with_call_time_rngs_matches_the_tutorial_loop(dropout):
    """The tutorial's CNN (Dropout given ``rngs`` at call time, ``(loss, logits)``)
    trains as the tutorial's own loop: rate 0, and rate 0.25 with the documented keys."""
    ns = snippet("nnx")
    assert ns["result"].aux.shape[:3] == (1, 4, 10)
    key = jax.random.key(3)
    result = nnx_run(ns, dropout, key)
    make = lambda: ns["CNN"](dropout=dropout, rngs=nnx.Rngs(0))
    losses, vals = nnx_reference(make, ns["loss_fn"], ns["train"], ns["val"], result.lrs, key)
    np.testing.assert_allclose(result.losses[0], losses, rtol=RTOL)
    np.testing.assert_allclose(result.val_losses[0], vals, rtol=RTOL)  # eval view
    assert result.aux.shape == (1, 3, STEPS, 32, 10)  # the logits


def test_nnx_dropout_same_key_same_numbers_other_key_other_numbers():
    ns = snippet("nnx")
    a = nnx_run(ns, 0.25, jax.random.key(5))
    b = nnx_run(ns, 0.25, jax.random.key(5))
    c = nnx_run(ns, 0.25, jax.random.key(6))
    np.testing.assert_array_equal(a.losses, b.losses)  # one program, the same inputs
    assert np.all(a.losses[0, :, 1:] != c.losses[0, :, 1:])  # other masks from step 0 on


# ------------------------------------------------------------------- Equinox


def eqx_reference(model, loss_fn, train, val, lrs, key, state=None):
    """Equinox's tutorial loop, one rate at a time: train losses [K, T], val [K],
    final models and states."""
    takes_key = state is None  # the snippets: the Dropout MLP takes key, BatchNorm state

    @eqx.filter_jit
    def make_step(model, state, opt_state, batch, k, lr):
        if state is None:
            loss, grads = eqx.filter_value_and_grad(loss_fn)(model, batch, k)
        else:
            (loss, state), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(
                model, state, batch
            )
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = optax.sgd(lr).update(grads, opt_state, params)
        return eqx.apply_updates(model, updates), state, opt_state, loss

    @eqx.filter_jit
    def evaluate(model, state, batch):
        model = eqx.nn.inference_mode(model)
        return loss_fn(model, batch, None) if state is None else loss_fn(model, state, batch)[0]

    losses, vals, finals = [], [], []
    for i, lr in enumerate(lrs):
        m, s = model, state
        lr = jnp.float32(lr)
        opt_state = optax.sgd(lr).init(eqx.filter(m, eqx.is_inexact_array))
        row = []
        for t in range(STEPS):
            k = step_key(key, i, t) if takes_key else None
            m, s, opt_state, loss = make_step(m, s, opt_state, batch_at(train, t), k, lr)
            row.append(float(loss))
        losses.append(row)
        vals.append(
            np.mean([float(evaluate(m, s, batch_at(val, j))) for j in range(n_batches(val))])
        )
        finals.append((m, s))
    return np.array(losses), np.array(vals), finals


def assert_same_module(got, want):
    """Same class and static structure; arrays within tolerance."""
    assert type(got) is type(want)
    g_arr, g_static = eqx.partition(got, eqx.is_inexact_array)
    w_arr, w_static = eqx.partition(want, eqx.is_inexact_array)
    assert jax.tree.structure(g_static) == jax.tree.structure(w_static)
    assert jax.tree.leaves(g_static) == jax.tree.leaves(w_static)
    for g, w in zip(jax.tree.leaves(g_arr), jax.tree.leaves(w_arr), strict=True):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=1e-6)


def test_equinox_dropout_mlp_matches_the_equinox_loop_and_hands_back_a_net():
    ns = snippet("eqx_dropout")
    assert type(ns["best"]) is ns["Net"]
    key = jax.random.key(11)
    model = ns["Net"](jax.random.key(0))
    result = lrjax.range_test(
        ns["loss_fn"],
        model,
        ns["train"],
        num_steps=STEPS,
        val_batches=ns["val"],
        return_params=True,
        key=key,
        progress=False,
        **LRS,
    )
    losses, vals, finals = eqx_reference(
        model, ns["loss_fn"], ns["train"], ns["val"], result.lrs, key
    )
    np.testing.assert_allclose(result.losses[0], losses, rtol=RTOL)
    np.testing.assert_allclose(result.val_losses[0], vals, rtol=RTOL)  # inference mode
    best = int(np.argmin(vals))
    assert result.best_index == best
    assert_same_module(result.best_params(), finals[best][0])
    again = lrjax.range_test(
        ns["loss_fn"], model, ns["train"], num_steps=STEPS, key=key, progress=False, **LRS
    )
    other = lrjax.range_test(
        ns["loss_fn"],
        model,
        ns["train"],
        num_steps=STEPS,
        key=jax.random.key(12),
        progress=False,
        **LRS,
    )
    np.testing.assert_array_equal(again.losses, result.losses)  # same key, same numbers
    assert np.all(other.losses[0] != result.losses[0])


def test_equinox_batchnorm_with_state_matches_the_equinox_loop():
    ns = snippet("eqx_batchnorm")
    assert type(ns["best"]) is ns["Model"] and isinstance(ns["best_state"], eqx.nn.State)
    model, state = eqx.nn.make_with_state(ns["Model"])(jax.random.key(0))
    result = lrjax.range_test(
        ns["loss_fn"],
        model,
        ns["train"],
        state=state,
        num_steps=STEPS,
        val_batches=ns["val"],
        return_params=True,
        progress=False,
        **LRS,
    )
    losses, vals, finals = eqx_reference(
        model, ns["loss_fn"], ns["train"], ns["val"], result.lrs, None, state=state
    )
    np.testing.assert_allclose(result.losses[0], losses, rtol=RTOL)
    np.testing.assert_allclose(result.val_losses[0], vals, rtol=RTOL)  # running statistics
    best = int(np.argmin(vals))
    assert result.best_index == best
    assert_same_module(result.best_params(), finals[best][0])
    got, want = result.best_state(), finals[best][1]
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=1e-6)


# ---------------------------------------------------------------- data loaders


def test_torch_dataloader_equals_the_stacked_batches():
    ns = snippet("torch_loader")
    assert ns["result"].val_losses.shape == (1, 4)
    X, y = ns["X"], ns["y"]
    loader = torch.utils.data.DataLoader(ns["dataset"], batch_size=32, drop_last=True)
    val_loader = ns["val_loader"]
    args = dict(num_steps=20, progress=False, min_lr=1e-3, max_lr=1e-1, num_lrs=3)
    from_torch = lrjax.range_test(
        ns["loss_fn"], ns["params"], loader, val_batches=val_loader, **args
    )
    as_numpy = [(x.numpy(), t.numpy()) for x, t in loader]
    from_list = lrjax.range_test(
        ns["loss_fn"],
        ns["params"],
        as_numpy,
        val_batches=[(x.numpy(), t.numpy()) for x, t in val_loader],
        **args,
    )
    # The same stream of the same arrays: one program, exactly the same numbers.
    np.testing.assert_array_equal(from_torch.losses, from_list.losses)
    np.testing.assert_array_equal(from_torch.val_losses, from_list.val_losses)
    n_val = (len(X) - 1500) // 32
    stacked = lrjax.range_test(
        ns["loss_fn"],
        ns["params"],
        (X[:640].reshape(20, 32, 64), y[:640].reshape(20, 32)),
        val_batches=(
            X[1500 : 1500 + 32 * n_val].reshape(n_val, 32, 64),
            y[1500 : 1500 + 32 * n_val].reshape(n_val, 32),
        ),
        **args,
    )
    # Stacked data run in another program (one scan instead of streamed blocks).
    np.testing.assert_allclose(from_torch.losses, stacked.losses, rtol=RTOL)
    np.testing.assert_allclose(from_torch.val_losses, stacked.val_losses, rtol=RTOL)


# ------------------------------------------------------------- sweep and tune


def test_sweep_takes_an_equinox_model_with_state():
    ns = snippet("eqx_batchnorm")
    model, state = eqx.nn.make_with_state(ns["Model"])(jax.random.key(0))
    lrs = [1e-2, 1e-1]
    result = lrjax.sweep(
        ns["loss_fn"],
        model,
        ns["train"],
        lambda lr: optax.sgd(lr),
        {"lr": lrs},
        num_steps=STEPS,
        state=state,
        val_batches=ns["val"],
        return_params=True,
        progress=False,
    )
    losses, vals, finals = eqx_reference(
        model, ns["loss_fn"], ns["train"], ns["val"], lrs, None, state=state
    )
    np.testing.assert_allclose(result.losses[0], losses, rtol=RTOL)
    np.testing.assert_allclose(result.val_losses[0], vals, rtol=RTOL)
    assert_same_module(result.best_params(), finals[int(np.argmin(vals))][0])


def test_tune_takes_the_nnx_tutorial_model_with_call_time_rngs():
    ns = snippet("nnx")
    model = nnx.view(ns["CNN"](rngs=nnx.Rngs(0)), deterministic=False, use_running_average=False)

    def run(key):
        return lrjax.tune(
            ns["loss_fn"],
            model,
            ns["train"],
            lambda lr: optax.adam(lr),
            {"lr": ("log", 1e-3, 1e-1)},
            population=4,
            num_steps=8,
            rounds=2,
            has_aux=True,
            val_batches=ns["val"],
            key=key,
            progress=False,
        )

    a, b, c = run(jax.random.key(0)), run(jax.random.key(0)), run(jax.random.key(1))
    assert np.isfinite(a.best_score) and 1e-3 <= a.best["lr"] <= 1e-1 * 1.25
    np.testing.assert_array_equal(a.losses, b.losses)  # same key, same numbers
    assert not np.array_equal(a.losses, c.losses)  # other draws of rates and Dropout
    assert isinstance(a.params, nnx.State)


def test_a_freshly_built_equinox_model_compiles_nothing():
    """The static part (MLP activations, Dropout's p) is compared by structure."""
    from oracles import count_compiles

    ns = snippet("eqx_dropout")
    call = lambda seed: lrjax.range_test(
        ns["loss_fn"],
        ns["Net"](jax.random.key(seed)),
        ns["train"],
        num_steps=STEPS,
        progress=False,
        **LRS,
    )
    call(0)
    assert count_compiles(lambda: call(1), "") == 0
