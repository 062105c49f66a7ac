"""Tiny problems and a plain-Python reference trainer for the range-test tests.

The reference trains one copy at a time with a Python loop of jitted single
steps (no vmap, no scan) and applies the documented smoothing and divergence
rule in Python floats (float64), so it is independent of the engine.
"""

from __future__ import annotations

import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

T = 12  # steps of the tiny problems


def init_mlp(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w1": jax.random.normal(k1, (4, 8)) * 0.5,
        "b1": jax.random.normal(k3, (8,)) * 0.1,
        "w2": jax.random.normal(k2, (8,)) * 0.5,
    }


def mlp_loss(p, batch):
    x, y = batch
    return jnp.mean((jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] - y) ** 2)


def make_batches(steps=T, seed=0):
    x = jax.random.normal(jax.random.PRNGKey(seed), (steps, 16, 4))
    return x, jnp.sin(x.sum(-1))


def momentum(lr):
    return optax.sgd(lr, momentum=0.9)


def reference_run(loss_fn, params, batches, optimizer, lrs, num_steps, factor=4.0):
    """One copy, Python loop: ``lrs`` is a scalar (constant) or a per-step list.

    Returns ``(losses, smoothed, stop_step)`` with NaN after the stop, as documented.
    """
    per_step = np.ndim(lrs) == 1
    lr0 = lrs[0] if per_step else lrs
    state = optimizer(lr0).init(params)

    @jax.jit
    def step(p, s, b, lr):
        loss, g = jax.value_and_grad(loss_fn)(p, b)
        u, s = optimizer(lr).update(g, s, p)
        return loss, optax.apply_updates(p, u), s

    losses = np.full(num_steps, np.nan)
    smoothed = np.full(num_steps, np.nan)
    ema, best, stop = 0.0, math.inf, -1
    p = params
    for t in range(num_steps):
        batch = batches(t) if callable(batches) else jax.tree.map(lambda x: x[t], batches)
        lr = float(lrs[t]) if per_step else float(lr0)
        loss, p_new, s_new = step(p, state, batch, np.float32(lr))
        loss = float(loss)
        ema = 0.98 * ema + 0.02 * loss
        sm = ema / (1 - 0.98 ** (t + 1))
        losses[t], smoothed[t] = loss, sm
        best = min(best, sm)
        if not math.isfinite(loss) or not math.isfinite(sm) or sm > factor * best:
            stop = t
            break
        p, state = p_new, s_new
    return losses, smoothed, stop


@pytest.fixture
def helpers():
    """The module's problem builders and reference trainer, as attributes."""
    return types.SimpleNamespace(
        T=T,
        init_mlp=init_mlp,
        mlp_loss=mlp_loss,
        make_batches=make_batches,
        momentum=momentum,
        reference_run=reference_run,
    )


@pytest.fixture
def tiny():
    """``(loss_fn, params, batches)`` of a 4-8-1 tanh MLP regression, 12 steps."""
    return mlp_loss, init_mlp(jax.random.PRNGKey(0)), make_batches()
