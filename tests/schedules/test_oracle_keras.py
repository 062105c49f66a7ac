"""Oracle tests: lrjax schedules against the real ``keras.optimizers.schedules`` (Keras 3).

Keras runs on its JAX backend inside ``jax.enable_x64(True)`` with float64
hyperparameters, so the reference is computed in float64; lrjax runs as users run
it (float32, jitted over ``jnp.arange(n)``). Each test draws at least 20 random
valid configurations from a seeded ``numpy.random.default_rng`` and compares every
step of a range covering several decay periods, boundaries or restarts:
``|lrjax - keras| <= max(1e-5 * |keras|, atol)`` (``atol`` is explained in
``tests/oracles.py``).
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"  # before keras is first imported

import jax
import keras
import numpy as np
import pytest
from oracles import check, f32, log_uniform, lrjax_values, report, uniform

import lrjax

KS = keras.optimizers.schedules
N = 300


def keras_values(schedule, n: int) -> np.ndarray:
    """A Keras schedule at steps ``0 .. n-1``, evaluated in float64.

    ``jax.vmap`` over scalar steps, because Keras' warmup branch is an
    ``ops.cond`` that needs a scalar predicate.
    """
    with jax.enable_x64(True):
        out = np.asarray(jax.vmap(schedule)(np.arange(n, dtype=np.int64)))
    assert out.dtype == np.float64, out.dtype
    return out


def test_keras_runs_on_jax_in_float64():
    assert keras.backend.backend() == "jax"
    ref = keras_values(KS.ExponentialDecay(np.float64(0.1), 3, np.float64(0.5)), 4)
    np.testing.assert_array_equal(ref, 0.1 * 0.5 ** (np.arange(4) / 3))


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_vs_ExponentialDecay(staircase):
    rng = np.random.default_rng(201 + staircase)
    configs, worst = 24, 0.0
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        decay_steps = int(rng.integers(1, 100))
        # A quarter of the configs grow (decay_rate > 1), at most 1e4-fold over N steps.
        if k % 4 == 3:
            rate = uniform(rng, 1.001, 1e4 ** (decay_steps / N))
        else:
            rate = uniform(rng, max(0.05, 1e-4 ** (decay_steps / N)), 0.999)
        ref = keras_values(
            KS.ExponentialDecay(np.float64(init), decay_steps, rate, staircase=staircase), N
        )
        got = lrjax_values(lrjax.exponential(init, rate, decay_steps, staircase=staircase), N)
        ctx = f"{init=} {decay_steps=} {rate=} {staircase=}"
        worst = max(worst, check(got, ref, scale=float(np.max(ref)), context=ctx))
    report(f"exponential (staircase={staircase})", "keras ExponentialDecay", configs, N, worst)


def test_piecewise_constant_old_vs_PiecewiseConstantDecay():
    rng = np.random.default_rng(203)
    configs, worst = 24, 0.0
    for k in range(configs):
        count = int(rng.integers(1, 8))
        low = 0 if k % 4 == 0 else 1  # a boundary at step 0 now and then
        boundaries = sorted(int(b) for b in rng.choice(np.arange(low, N), count, replace=False))
        values = [log_uniform(rng, 1e-4, 1.0) for _ in range(count + 1)]
        ref = keras_values(KS.PiecewiseConstantDecay(boundaries, np.float64(values).tolist()), N)
        got = lrjax_values(lrjax.piecewise_constant(boundaries, values, at_boundary="old"), N)
        ctx = f"{boundaries=} {values=}"
        worst = max(worst, check(got, ref, scale=max(values), context=ctx))
        # The old value still holds at the boundary step, the new one right after.
        for i, b in enumerate(boundaries):
            np.testing.assert_allclose(got[b], values[i], rtol=1e-6, err_msg=ctx)
            if b + 1 < N:
                np.testing.assert_allclose(got[b + 1], values[i + 1], rtol=1e-6, err_msg=ctx)
    report("piecewise_constant (old)", "keras PiecewiseConstantDecay", configs, N, worst)


@pytest.mark.parametrize("cycle", [False, True])
def test_polynomial_vs_PolynomialDecay(cycle):
    rng = np.random.default_rng(204 + cycle)
    configs, worst = 24, 0.0
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        end = [0.0, f32(init * rng.uniform(0.0, 0.5)), f32(init * rng.uniform(1.0, 3.0))][k % 3]
        decay_steps = 1 if k == 0 else int(rng.integers(1, 120 if cycle else N + 50))
        power = uniform(rng, 0.3, 3.0) if k % 4 else 1.0
        ref = keras_values(
            KS.PolynomialDecay(np.float64(init), decay_steps, end, power=power, cycle=cycle), N
        )
        sched = lrjax.polynomial(init, end, decay_steps, power=power, cycle=cycle)
        got = lrjax_values(sched, N)
        ctx = f"{init=} {end=} {decay_steps=} {power=} {cycle=}"
        worst = max(worst, check(got, ref, scale=max(init, end), context=ctx))
    report(f"polynomial (cycle={cycle})", "keras PolynomialDecay", configs, N, worst)


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_vs_InverseTimeDecay(staircase):
    rng = np.random.default_rng(206 + staircase)
    configs, worst = 24, 0.0
    for _ in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        decay_steps = int(rng.integers(1, 100))
        rate = log_uniform(rng, 0.01, 5.0)
        ref = keras_values(
            KS.InverseTimeDecay(np.float64(init), decay_steps, rate, staircase=staircase), N
        )
        got = lrjax_values(lrjax.inverse_time(init, rate, decay_steps, staircase=staircase), N)
        ctx = f"{init=} {decay_steps=} {rate=} {staircase=}"
        worst = max(worst, check(got, ref, scale=init, context=ctx))
    report(f"inverse_time (staircase={staircase})", "keras InverseTimeDecay", configs, N, worst)


def test_cosine_vs_CosineDecay():
    """No warmup: ``alpha`` is ``end_value / init_value``."""
    rng = np.random.default_rng(208)
    configs, worst = 24, 0.0
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        decay_steps = 1 if k == 0 else int(rng.integers(1, N))
        alpha = 0.0 if k % 3 == 0 else uniform(rng, 0.0, 0.5)
        ref = keras_values(KS.CosineDecay(np.float64(init), decay_steps, alpha=alpha), N)
        got = lrjax_values(lrjax.cosine(init, decay_steps, end_value=alpha * init), N)
        ctx = f"{init=} {decay_steps=} {alpha=}"
        worst = max(worst, check(got, ref, scale=init, context=ctx))
    report("cosine", "keras CosineDecay (no warmup)", configs, N, worst)


def test_warmup_cosine_vs_CosineDecay_with_warmup():
    """Keras' warmup is ``lrjax.warmup(lrjax.cosine(target, ...), warmup_steps, init)``.

    Keras ramps linearly from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps``, then decays from ``warmup_target`` over ``decay_steps``
    (counted after the warmup) to ``alpha * warmup_target``.
    """
    rng = np.random.default_rng(209)
    configs, worst = 24, 0.0
    for k in range(configs):
        target = log_uniform(rng, 1e-4, 1.0)
        init = 0.0 if k % 2 else f32(target * rng.uniform(0.0, 1.0))
        warmup_steps = int(rng.integers(1, 100))
        decay_steps = int(rng.integers(1, N - warmup_steps))
        alpha = 0.0 if k % 3 == 0 else uniform(rng, 0.0, 0.5)
        ref = keras_values(
            KS.CosineDecay(
                np.float64(init),
                decay_steps,
                alpha=alpha,
                warmup_target=target,
                warmup_steps=warmup_steps,
            ),
            N,
        )
        sched = lrjax.warmup(
            lrjax.cosine(target, decay_steps, end_value=alpha * target),
            warmup_steps,
            init_value=init,
        )
        got = lrjax_values(sched, N)
        ctx = f"{init=} {target=} {warmup_steps=} {decay_steps=} {alpha=}"
        worst = max(worst, check(got, ref, scale=target, context=ctx))
    report("warmup(cosine)", "keras CosineDecay (warmup_target)", configs, N, worst)


@pytest.mark.parametrize("t_mul", [1, 2, 3])
def test_cosine_restarts_vs_CosineDecayRestarts(t_mul):
    """``t_mul`` -> ``period_mult``, ``m_mul`` -> ``decay``, ``alpha * init`` -> ``end_value``."""
    rng = np.random.default_rng(210 + t_mul)
    n, configs, worst = 400, 20, 0.0
    hi = {1: 60, 2: 28, 3: 13}[t_mul]  # >= 3 restarts inside n steps
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        period = 1 if k == 0 else int(rng.integers(1, hi + 1))
        m_mul = 1.0 if k % 4 == 0 else uniform(rng, 0.3, 1.0)
        alpha = 0.0 if k % 3 == 0 else uniform(rng, 0.0, 0.3)
        ref = keras_values(
            KS.CosineDecayRestarts(
                np.float64(init), period, t_mul=float(t_mul), m_mul=m_mul, alpha=alpha
            ),
            n,
        )
        sched = lrjax.cosine_restarts(
            init, period, period_mult=t_mul, decay=m_mul, end_value=alpha * init
        )
        got = lrjax_values(sched, n)
        ctx = f"{init=} {period=} {t_mul=} {m_mul=} {alpha=}"
        worst = max(worst, check(got, ref, scale=init, context=ctx))
    report(f"cosine_restarts (period_mult={t_mul})", "keras CosineDecayRestarts", configs, n, worst)
