"""Oracle tests: lrjax schedules against the real ``optax`` schedules.

Optax runs inside ``jax.enable_x64(True)`` with float64 hyperparameters and int64
counts, so the reference is computed in float64; lrjax runs as users run it
(float32, jitted over ``jnp.arange(n)``). Each test draws at least 20 random
valid configurations from a seeded ``numpy.random.default_rng`` and compares every
step of a range that covers the transition, boundaries and the flat tail:
``|lrjax - optax| <= max(1e-5 * |optax|, atol)`` (``atol`` is explained in
``tests/oracles.py``).
"""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest
from oracles import check, f32, log_uniform, lrjax_values, report, uniform

import lrjax

N = 300


def optax_values(schedule, n: int = N) -> np.ndarray:
    """An Optax schedule at counts ``0 .. n-1``, evaluated in float64."""
    with jax.enable_x64(True):
        out = np.asarray(schedule(np.arange(n, dtype=np.int64)), dtype=np.float64)
    return np.broadcast_to(out, (n,))  # a constant schedule returns a scalar


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_vs_exponential_decay(staircase):
    """``transition_begin``, ``staircase`` and ``end_value`` (a floor, or a ceiling
    when ``decay_rate > 1``)."""
    rng = np.random.default_rng(301 + staircase)
    configs, worst, clipped = 24, 0.0, 0
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        steps = int(rng.integers(1, 80))
        begin = 0 if k % 4 == 0 else int(rng.integers(1, 100))
        grow = k % 3 == 2
        if grow:
            rate = uniform(rng, 1.001, 1e3 ** (steps / N))
            end = None if k % 2 else f32(init * rng.uniform(1.5, 50.0))  # ceiling
        else:
            rate = uniform(rng, max(0.05, 1e-4 ** (steps / N)), 0.999)
            end = None if k % 2 else f32(init * rng.uniform(1e-3, 0.5))  # floor
        ref = optax_values(
            optax.exponential_decay(
                np.float64(init),
                steps,
                np.float64(rate),
                transition_begin=begin,
                staircase=staircase,
                end_value=None if end is None else np.float64(end),
            )
        )
        sched = lrjax.exponential(
            init, rate, steps, staircase=staircase, transition_begin=begin, end_value=end
        )
        got = lrjax_values(sched, N)
        ctx = f"{init=} {steps=} {rate=} {begin=} {end=} {staircase=}"
        worst = max(worst, check(got, ref, scale=float(np.max(ref)), context=ctx))
        clipped += end is not None and bool(np.any(ref == np.float64(end)))
    assert clipped >= 4  # the floor / ceiling is active inside the range in several configs
    report(f"exponential (staircase={staircase})", "optax exponential_decay", configs, N, worst)


def test_linear_vs_linear_schedule():
    rng = np.random.default_rng(303)
    configs, worst = 24, 0.0
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        end = [0.0, f32(init * rng.uniform(0.0, 1.0)), f32(init * rng.uniform(1.0, 10.0))][k % 3]
        steps = int(rng.integers(1, 200))
        begin = 0 if k % 4 == 0 else int(rng.integers(1, N - steps))
        ref = optax_values(
            optax.linear_schedule(np.float64(init), np.float64(end), steps, transition_begin=begin)
        )
        got = lrjax_values(lrjax.linear(init, end, steps, transition_begin=begin), N)
        ctx = f"{init=} {end=} {steps=} {begin=}"
        worst = max(worst, check(got, ref, scale=max(init, end), context=ctx))
    report("linear", "optax linear_schedule", configs, N, worst)


def test_cosine_vs_cosine_decay_schedule():
    """``alpha`` is ``end_value / init_value``; ``exponent`` is shared."""
    rng = np.random.default_rng(304)
    configs, worst = 24, 0.0
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        steps = 1 if k == 0 else int(rng.integers(1, N))
        alpha = 0.0 if k % 3 == 0 else uniform(rng, 0.0, 0.5)
        exponent = 1.0 if k % 4 == 0 else uniform(rng, 0.3, 4.0)
        ref = optax_values(
            optax.cosine_decay_schedule(
                np.float64(init), steps, alpha=np.float64(alpha), exponent=np.float64(exponent)
            )
        )
        sched = lrjax.cosine(init, steps, end_value=alpha * init, exponent=exponent)
        got = lrjax_values(sched, N)
        ctx = f"{init=} {steps=} {alpha=} {exponent=}"
        worst = max(worst, check(got, ref, scale=init, context=ctx))
    report("cosine", "optax cosine_decay_schedule", configs, N, worst)


def test_piecewise_constant_vs_piecewise_constant_schedule():
    """Optax's multiplicative scales become lrjax's absolute values (``"new"``)."""
    rng = np.random.default_rng(305)
    configs, worst = 24, 0.0
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        count = int(rng.integers(1, 8))
        low = 0 if k % 4 == 0 else 1
        boundaries = sorted(int(b) for b in rng.choice(np.arange(low, N), count, replace=False))
        scales = [uniform(rng, 0.05, 3.0) for _ in boundaries]
        values = [init]
        for s in scales:
            values.append(values[-1] * s)
        ref = optax_values(
            optax.piecewise_constant_schedule(np.float64(init), dict(zip(boundaries, scales)))
        )
        got = lrjax_values(lrjax.piecewise_constant(boundaries, values), N)
        ctx = f"{init=} {boundaries=} {scales=}"
        worst = max(worst, check(got, ref, scale=max(values), context=ctx))
    report("piecewise_constant (new)", "optax piecewise_constant_schedule", configs, N, worst)


def _random_piece(rng: np.random.Generator, kind: int):
    """A matching (lrjax, optax) pair of schedules of one of four kinds."""
    init = log_uniform(rng, 1e-4, 1.0)
    steps = int(rng.integers(1, 120))
    if kind == 0:
        return lrjax.constant(init), optax.constant_schedule(np.float64(init))
    if kind == 1:
        end = f32(init * rng.uniform(0.0, 2.0))
        return (
            lrjax.linear(init, end, steps),
            optax.linear_schedule(np.float64(init), np.float64(end), steps),
        )
    if kind == 2:
        alpha = uniform(rng, 0.0, 0.5)
        return (
            lrjax.cosine(init, steps, end_value=alpha * init),
            optax.cosine_decay_schedule(np.float64(init), steps, alpha=np.float64(alpha)),
        )
    rate = uniform(rng, 0.3, 0.99)
    return (
        lrjax.exponential(init, rate, steps),
        optax.exponential_decay(np.float64(init), steps, np.float64(rate)),
    )


def test_join_vs_join_schedules():
    """Each piece restarts its count at its boundary, as in ``optax.join_schedules``."""
    rng = np.random.default_rng(306)
    configs, worst = 24, 0.0
    for k in range(configs):
        count = 2 + k % 3
        kinds = [int(i) for i in rng.integers(0, 4, count)]
        pieces = [_random_piece(rng, kind) for kind in kinds]
        boundaries = sorted(int(b) for b in rng.choice(np.arange(1, N), count - 1, replace=False))
        ref = optax_values(optax.join_schedules([p[1] for p in pieces], boundaries))
        got = lrjax_values(lrjax.join([p[0] for p in pieces], boundaries), N)
        ctx = f"{kinds=} {boundaries=}"
        worst = max(worst, check(got, ref, scale=float(np.max(ref)), context=ctx))
    report("join", "optax join_schedules", configs, N, worst)


def test_warmup_cosine_vs_warmup_cosine_decay_schedule():
    """``optax.warmup_cosine_decay_schedule(init, peak, w, decay_steps, end, exponent)``
    is ``lrjax.warmup(lrjax.cosine(peak, decay_steps - w, end, exponent), w, init)``.

    The one offset: Optax's ``decay_steps`` counts the warmup too (the cosine
    reaches ``end_value`` at step ``decay_steps``), while ``lrjax.cosine``'s
    ``steps`` counts the decay alone, because ``lrjax.warmup`` shifts the
    schedule it wraps by its ``steps``. Passing Optax's ``decay_steps`` unchanged
    would end the decay ``w`` steps late; the test checks that too.
    """
    rng = np.random.default_rng(307)
    configs, worst = 24, 0.0
    for k in range(configs):
        peak = log_uniform(rng, 1e-4, 1.0)
        init = 0.0 if k % 2 else f32(peak * rng.uniform(0.0, 1.0))
        w = 0 if k % 6 == 0 else int(rng.integers(1, 100))
        decay_steps = int(rng.integers(w + 1, N))
        end = 0.0 if k % 3 == 0 else f32(peak * rng.uniform(0.0, 0.5))
        exponent = 1.0 if k % 4 else uniform(rng, 0.5, 3.0)
        ref = optax_values(
            optax.warmup_cosine_decay_schedule(
                np.float64(init),
                np.float64(peak),
                w,
                decay_steps,
                end_value=np.float64(end),
                exponent=np.float64(exponent),
            )
        )
        sched = lrjax.warmup(
            lrjax.cosine(peak, decay_steps - w, end_value=end, exponent=exponent),
            w,
            init_value=init,
        )
        got = lrjax_values(sched, N)
        ctx = f"{init=} {peak=} {w=} {decay_steps=} {end=} {exponent=}"
        worst = max(worst, check(got, ref, scale=peak, context=ctx))
        if w > 0 and end < 0.9 * peak:
            naive = lrjax.warmup(
                lrjax.cosine(peak, decay_steps, end_value=end, exponent=exponent),
                w,
                init_value=init,
            )
            assert not np.allclose(lrjax_values(naive, N), ref, rtol=1e-3), ctx
    report("warmup(cosine)", "optax warmup_cosine_decay_schedule", configs, N, worst)


def test_polynomial_vs_polynomial_schedule():
    """``transition_begin=0`` is ``lrjax.polynomial``; a later begin is a
    ``lrjax.join`` of a constant and the polynomial."""
    rng = np.random.default_rng(308)
    configs, worst = 24, 0.0
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        end = [0.0, f32(init * rng.uniform(0.0, 0.5)), f32(init * rng.uniform(1.0, 3.0))][k % 3]
        power = 1.0 if k % 4 == 0 else uniform(rng, 0.3, 3.0)
        steps = int(rng.integers(1, 200))
        begin = 0 if k % 2 else int(rng.integers(1, N - steps))
        ref = optax_values(
            optax.polynomial_schedule(
                np.float64(init), np.float64(end), np.float64(power), steps, transition_begin=begin
            )
        )
        sched = lrjax.polynomial(init, end, steps, power=power)
        if begin:
            sched = lrjax.join([lrjax.constant(init), sched], [begin])
        got = lrjax_values(sched, N)
        ctx = f"{init=} {end=} {power=} {steps=} {begin=}"
        worst = max(worst, check(got, ref, scale=max(init, end), context=ctx))
    report("polynomial", "optax polynomial_schedule", configs, N, worst)
