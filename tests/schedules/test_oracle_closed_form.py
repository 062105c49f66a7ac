"""Oracle tests for the schedules no library ships: independent closed forms.

``inverse_sqrt``, ``flat_cos``, ``wsd``, ``rex`` and ``one_cycle`` /
``one_cycle_momentum`` with ``convention="fastai"`` are compared against formulas
written here in plain Python floats (float64), step by step, from their
published definitions: fastai's ``SchedCos`` / ``SchedLin`` / ``combine_scheds``
on ``pos = t / total_steps``, REX's ``(1 - z) / (1/2 + (1 - z) / 2)``, the
Transformer paper's ``d_model**-0.5 * min(t**-0.5, t * w**-1.5)``, and WSD as
docs/schedules.md fixes it (with Python's ``round``). Each test draws at
least 20 random valid configurations from a seeded ``numpy.random.default_rng``
and checks every step up to past the schedule's end:
``|lrjax - ref| <= max(1e-5 * |ref|, atol)`` (``atol`` is explained in
``tests/oracles.py``).
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from oracles import check, f32, log_uniform, lrjax_values, report, uniform

import lrjax

# ------------------------------------------------------------------ fastai forms

#: Absolute slack (x peak) for fastai's phase-based curves. A phase starts at the
#: non-integer ``pct_start * total_steps``; lrjax's float32 position inside a phase
#: carries that point's rounding (~eps32 * total) divided by the phase length
#: ``(1 - pct_start) * total``, up to 20x with ``pct_start = 0.95``, times the
#: cosine's slope pi/2: ~9e-7 * peak was measured, so 2e-6 instead of 1e-6.
PHASE_ATOL_FRAC = 2e-6


def sched_cos(start: float, end: float, pos: float) -> float:
    """fastai ``SchedCos(start, end)(pos)``."""
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def sched_lin(start: float, end: float, pos: float) -> float:
    """fastai ``SchedLin(start, end)(pos)``."""
    return start + pos * (end - start)


def combine_scheds(pcts, scheds):
    """fastai ``combine_scheds``: ``scheds[i]`` runs over the ``i``-th share ``pcts[i]``.

    ``pos`` past 1 (fastai never asks) is held at 1, as lrjax documents.
    """
    edges = [0.0]
    for p in pcts:
        edges.append(edges[-1] + p)

    def inner(pos: float) -> float:
        pos = min(pos, 1.0)
        if pos >= 1.0:
            return scheds[-1](1.0)
        idx = max(i for i in range(len(scheds)) if pos >= edges[i])
        return scheds[idx]((pos - edges[idx]) / (edges[idx + 1] - edges[idx]))

    return inner


def fastai_one_cycle(total, pct, levels, anneal, three_phase):
    """``fit_one_cycle``'s curve through ``levels`` (3 levels, or 4 with three phases)."""
    sched = sched_cos if anneal == "cos" else sched_lin
    pcts = [pct, pct, 1 - 2 * pct] if three_phase else [pct, 1 - pct]
    parts = [
        (lambda a, b: lambda pos: sched(a, b, pos))(levels[i], levels[i + 1])
        for i in range(len(pcts))
    ]
    f = combine_scheds(pcts, parts)
    return lambda t: f(t / total)


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_fastai_vs_fastai_formulas(anneal, three_phase):
    """Rate: ``max/div -> max -> max/final_div``; momentum ``hi -> lo -> hi``.

    With ``three_phase`` the extension is fastai's ``combine_scheds`` over the
    shares ``[pct, pct, 1 - 2 pct]`` through ``start -> max -> start -> end`` (and
    momentum ``hi -> lo -> hi -> hi``).
    """
    rng = np.random.default_rng(401 + 2 * (anneal == "cos") + three_phase)
    n, configs, worst_lr, worst_mom = 330, 20, 0.0, 0.0
    for _ in range(configs):
        total = int(rng.integers(5, 300))
        pct = uniform(rng, 0.05, 0.45 if three_phase else 0.95)
        peak = log_uniform(rng, 1e-4, 1.0)
        div = uniform(rng, 2.0, 100.0)
        final_div = log_uniform(rng, 10.0, 1e5)
        lo, hi = uniform(rng, 0.7, 0.9), uniform(rng, 0.9, 0.99)
        start, end = peak / div, peak / final_div
        lr_levels = (start, peak, start, end) if three_phase else (start, peak, end)
        mom_levels = (hi, lo, hi, hi) if three_phase else (hi, lo, hi)
        ref_lr = fastai_one_cycle(total, pct, lr_levels, anneal, three_phase)
        ref_mom = fastai_one_cycle(total, pct, mom_levels, anneal, three_phase)
        common = {"pct_start": pct, "three_phase": three_phase, "anneal": anneal}
        lr = lrjax.one_cycle(peak, total, div_factor=div, final_div_factor=final_div, **common)
        mom = lrjax.one_cycle_momentum(total, base_momentum=lo, max_momentum=hi, **common)
        ctx = f"{total=} {pct=} {peak=} {div=} {final_div=} {lo=} {hi=} {anneal=} {three_phase=}"
        worst_lr = max(
            worst_lr,
            check(
                lrjax_values(lr, n),
                [ref_lr(t) for t in range(n)],
                scale=peak,
                context=ctx,
                atol_frac=PHASE_ATOL_FRAC,
            ),
        )
        worst_mom = max(
            worst_mom,
            check(
                lrjax_values(mom, n),
                [ref_mom(t) for t in range(n)],
                scale=hi,
                context=ctx,
                atol_frac=PHASE_ATOL_FRAC,
            ),
        )
    tag = f"anneal={anneal}, three_phase={three_phase}"
    report(f"one_cycle fastai ({tag})", "fastai combine_scheds", configs, n, worst_lr)
    report(f"one_cycle_momentum fastai ({tag})", "fastai combine_scheds", configs, n, worst_mom)


def test_flat_cos_vs_fastai_formula():
    """``fit_flat_cos``: ``combined_cos(pct_start, lr, lr, lr / 1e5)``."""
    rng = np.random.default_rng(410)
    n, configs, worst = 330, 24, 0.0
    for _ in range(configs):
        total = int(rng.integers(2, 300))
        pct = uniform(rng, 0.05, 0.95)
        init = log_uniform(rng, 1e-4, 1.0)
        f = combine_scheds(
            [pct, 1 - pct],
            [lambda pos: sched_cos(init, init, pos), lambda pos: sched_cos(init, init / 1e5, pos)],
        )
        ref = [f(t / total) for t in range(n)]
        got = lrjax_values(lrjax.flat_cos(init, total, pct_start=pct), n)
        ctx = f"{total=} {pct=} {init=}"
        worst = max(worst, check(got, ref, scale=init, context=ctx, atol_frac=PHASE_ATOL_FRAC))
    report("flat_cos", "fastai fit_flat_cos formula", configs, n, worst)


# --------------------------------------------------------------- other formulas


def test_rex_vs_closed_form():
    rng = np.random.default_rng(420)
    n, configs, worst = 330, 24, 0.0
    for k in range(configs):
        init = log_uniform(rng, 1e-4, 1.0)
        steps = int(rng.integers(1, 300))
        end = 0.0 if k % 2 else f32(init * rng.uniform(0.0, 0.5))

        def ref(t):
            z = min(t, steps) / steps
            return end + (init - end) * (1 - z) / (0.5 + 0.5 * (1 - z))

        got = lrjax_values(lrjax.rex(init, steps, end_value=end), n)
        ctx = f"{init=} {steps=} {end=}"
        worst = max(worst, check(got, [ref(t) for t in range(n)], scale=init, context=ctx))
    report("rex", "REX closed form", configs, n, worst)


def test_inverse_sqrt_vs_transformer_formula():
    """Vaswani et al.'s ``d**-0.5 * min(t**-0.5, t * w**-1.5)`` with
    ``d = 1 / (peak**2 * w)``, i.e. ``peak = (d * w)**-0.5``."""
    rng = np.random.default_rng(430)
    n, configs, worst = 400, 24, 0.0
    for k in range(configs):
        peak = log_uniform(rng, 1e-4, 1.0)
        w = 1 if k == 0 else int(rng.integers(1, 150))
        d = 1.0 / (peak * peak * w)

        def ref(t):
            return d**-0.5 * min(t**-0.5 if t > 0 else math.inf, t * w**-1.5)

        got = lrjax_values(lrjax.inverse_sqrt(peak, w), n)
        ctx = f"{peak=} {w=}"
        worst = max(worst, check(got, [ref(t) for t in range(n)], scale=peak, context=ctx))
    report("inverse_sqrt", "Transformer (Noam) formula", configs, n, worst)


def wsd_reference(peak, total, warmup, fraction, shape, end):
    """WSD as its docstring fixes it, in Python floats."""
    decay = round(fraction * total)  # Python's round (ties to even)
    decay_start = total - decay

    def f(t):
        if t < warmup:
            return peak * t / warmup
        if t >= total:
            return end
        if t < decay_start:
            return peak
        z = (t - decay_start) / decay
        w = {"linear": 1 - z, "sqrt": 1 - math.sqrt(z), "cosine": (1 + math.cos(math.pi * z)) / 2}
        return end + (peak - end) * w[shape]

    return f


@pytest.mark.parametrize("shape", ["linear", "sqrt", "cosine"])
def test_wsd_vs_closed_form(shape):
    """Random configurations; the decay length ``fraction * total`` is an exact
    tie (``x.5``, rounded to even as Python does) in a third of them."""
    rng = np.random.default_rng(440 + len(shape))
    n, configs, worst, ties = 330, 24, 0.0, 0
    for k in range(configs):
        total = int(rng.integers(4, 300))
        if k % 3 == 0:
            # fraction = (2m + 1) / (2 total), with a power-of-two total's product exact.
            total = int(2 ** rng.integers(2, 9))
            fraction = (2 * int(rng.integers(0, total // 2)) + 1) / (2 * total)
        else:
            fraction = uniform(rng, 0.0, 0.6)
        decay = round(fraction * total)
        ties += fraction * total % 1 == 0.5
        warmup = int(rng.integers(0, total - decay + 1)) if k % 4 else 0
        peak = log_uniform(rng, 1e-4, 1.0)
        end = 0.0 if k % 2 else f32(peak * rng.uniform(0.0, 0.5))
        ref = wsd_reference(peak, total, warmup, fraction, shape, end)
        sched = lrjax.wsd(
            peak,
            total,
            warmup_steps=warmup,
            decay_fraction=fraction,
            decay_shape=shape,
            end_value=end,
        )
        ctx = f"{peak=} {total=} {warmup=} {fraction=} {shape=} {end=}"
        got = lrjax_values(sched, n)
        worst = max(worst, check(got, [ref(t) for t in range(n)], scale=peak, context=ctx))
    assert ties >= 8
    report(f"wsd ({shape})", "documented closed form", configs, n, worst)


FRACTIONS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9)


def _wsd_decay_lengths(fractions, totals) -> np.ndarray:
    """The decay length lrjax uses, read off one stacked (vmapped) linear ``wsd``.

    With ``peak_value=1, end_value=0`` the rate at the fractional step
    ``total_steps - 0.5`` is ``0.5 / D`` (1 when there is no decay).
    """
    count = len(totals)
    stacked = lrjax.wsd(
        np.ones(count),
        np.asarray(totals),
        np.zeros(count, dtype=int),
        np.asarray(fractions),
        "linear",
        np.zeros(count),
    )
    steps = np.asarray(totals) - 0.5
    last = np.asarray(jax.vmap(lambda s, t: s(t))(stacked, steps), np.float64)
    return np.where(last >= 1.0, 0, np.rint(0.5 / last)).astype(int)


def test_wsd_decay_length_is_pythons_round_of_human_fractions():
    """``round(decay_fraction * total_steps)`` for every common fraction and total.

    float32 cannot see a float64 product that lies an ulp below a half
    (``0.35 * 90 == 31.499999999999996``): there lrjax takes the tie and rounds to
    even, as the ``wsd`` docstring says; every other product, exact ties such as
    ``0.1 * 25 == 2.5`` included, rounds as in Python. Under ``jax_enable_x64``
    every product rounds as in Python.
    """
    pairs = [(f, t) for f in FRACTIONS for t in range(1, 201)]
    fractions, totals = [p[0] for p in pairs], [p[1] for p in pairs]
    expected = np.array([round(f * t) for f, t in pairs])
    products = np.array([f * t for f, t in pairs])
    offset = products - np.floor(products) - 0.5
    near_tie = (offset != 0) & (np.abs(offset) < 1e-9)
    exact_tie = offset == 0
    assert near_tie.sum() >= 3 and exact_tie.sum() >= 50

    got = _wsd_decay_lengths(fractions, totals)
    np.testing.assert_array_equal(got[~near_tie], expected[~near_tie])
    even = 2 * np.round(products[near_tie] / 2)  # the tie, rounded to even
    np.testing.assert_array_equal(got[near_tie], even)

    with jax.enable_x64(True):
        got64 = _wsd_decay_lengths(fractions, totals)
    np.testing.assert_array_equal(got64, expected)


# ------------------------------------------------------------ fractional steps

#: Fractional parts tried at every integer step: exact in float32 below 2**21.
STEP_PARTS = (0.0, 0.25, 0.5, 0.75)


def fractional_steps(n: int) -> np.ndarray:
    """``k + f`` for ``k < n`` and every ``f`` of :data:`STEP_PARTS` (float64, exact)."""
    return (np.arange(n)[:, None] + np.asarray(STEP_PARTS)[None, :]).ravel()


def at_float_steps(sched, steps: np.ndarray) -> np.ndarray:
    """``sched`` at float32 steps in one jitted call, as float64 NumPy."""
    return np.asarray(_call(sched, np.asarray(steps, np.float32)), np.float64)


@jax.jit
def _call(sched, steps):
    # the schedule is a pytree argument: one compilation per structure
    return sched(steps)


def cyclic_closed_form(t: float, base, peak, up, down, mode, gamma) -> float:
    """torch ``CyclicLR``'s triangle at a real step ``t``: position ``t mod (up + down)``."""
    total = up + down
    cycle = math.floor(t / total)
    pos = t - cycle * total
    x = pos / up if pos <= up else (total - pos) / down
    scale = {"triangular": 1.0, "triangular2": 0.5**cycle, "exp_range": gamma**t}[mode]
    return base + (peak - base) * x * scale


def cosine_restarts_closed_form(t: float, init, period, mult, decay, end) -> float:
    """SGDR at a real step ``t``: walk the cycles, then a half cosine on ``t - start``."""
    i, start, length = 0, 0, period
    while t >= start + length:
        start, length, i = start + length, length * mult, i + 1
    frac = (t - start) / length
    return end + (init - end) * decay**i * (1 + math.cos(math.pi * frac)) / 2


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_between_integer_steps_vs_closed_form(mode):
    """A float step ``k + f`` is on the line between the triangle's integer points.

    A schedule that held ``s(k)`` between integers (or rounded the step) would be
    off by ``f * (peak - base) / up``, at least 0.5% of the swing here, against
    a tolerance of 1e-5 relative (float32 division and ``gamma ** t``).
    """
    rng = np.random.default_rng(420 + len(mode))
    steps = fractional_steps(130)
    for _ in range(12):
        base = log_uniform(rng, 1e-4, 0.1)
        peak = f32(base * uniform(rng, 2.0, 50.0))
        up = int(rng.integers(1, 50))
        down = int(rng.choice([up, int(rng.integers(1, 50))]))
        gamma = uniform(rng, 0.98, 0.9999)
        s = lrjax.cyclic(base, peak, up, down, mode=mode, gamma=gamma)
        ref = [cyclic_closed_form(t, base, peak, up, down, mode, gamma) for t in steps]
        check(at_float_steps(s, steps), ref, scale=peak, context=f"{base=} {peak=} {up=} {down=}")


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_between_integer_steps_vs_fastai_formulas(anneal, three_phase):
    """``one_cycle`` and ``one_cycle_momentum`` at ``k + f``: fastai's curve at ``pos = t / T``."""
    rng = np.random.default_rng(430 + 2 * (anneal == "cos") + three_phase)
    for _ in range(8):
        total = int(rng.integers(5, 120))
        steps = fractional_steps(total + 5)
        pct = uniform(rng, 0.05, 0.45 if three_phase else 0.95)
        peak = log_uniform(rng, 1e-4, 1.0)
        div, final_div = uniform(rng, 2.0, 100.0), log_uniform(rng, 10.0, 1e5)
        lo, hi = uniform(rng, 0.7, 0.9), uniform(rng, 0.9, 0.99)
        start, end = peak / div, peak / final_div
        lr_levels = (start, peak, start, end) if three_phase else (start, peak, end)
        mom_levels = (hi, lo, hi, hi) if three_phase else (hi, lo, hi)
        ref_lr = fastai_one_cycle(total, pct, lr_levels, anneal, three_phase)
        ref_mom = fastai_one_cycle(total, pct, mom_levels, anneal, three_phase)
        common = {"pct_start": pct, "three_phase": three_phase, "anneal": anneal}
        lr = lrjax.one_cycle(peak, total, div_factor=div, final_div_factor=final_div, **common)
        mom = lrjax.one_cycle_momentum(total, base_momentum=lo, max_momentum=hi, **common)
        ctx = f"{total=} {pct=} {peak=} {div=} {final_div=} {anneal=} {three_phase=}"
        got_lr, got_mom = at_float_steps(lr, steps), at_float_steps(mom, steps)
        ref_lr, ref_mom = [ref_lr(t) for t in steps], [ref_mom(t) for t in steps]
        check(got_lr, ref_lr, scale=peak, context=ctx, atol_frac=PHASE_ATOL_FRAC)
        check(got_mom, ref_mom, scale=hi, context=ctx, atol_frac=PHASE_ATOL_FRAC)


@pytest.mark.parametrize("pct_range", [(0.05, 0.5), (0.5, 0.95)])
def test_flat_cos_between_integer_steps_vs_fastai_formula(pct_range):
    """``flat_cos`` at ``k + f``: fastai's ``fit_flat_cos`` curve at ``pos = t / T``."""
    rng = np.random.default_rng(440 + int(10 * pct_range[0]))
    steps = fractional_steps(160)
    for _ in range(8):
        total = int(rng.integers(2, 150))
        pct, init = uniform(rng, *pct_range), log_uniform(rng, 1e-4, 1.0)
        f = combine_scheds(
            [pct, 1 - pct],
            [lambda pos: sched_cos(init, init, pos), lambda pos: sched_cos(init, init / 1e5, pos)],
        )
        got = at_float_steps(lrjax.flat_cos(init, total, pct_start=pct), steps)
        ref = [f(t / total) for t in steps]
        check(got, ref, scale=init, context=f"{total=} {pct=}", atol_frac=PHASE_ATOL_FRAC)


@pytest.mark.parametrize("mults", [(1,), (2, 3)])
def test_cosine_restarts_between_integer_steps_vs_closed_form(mults):
    """``cosine_restarts`` at ``k + f``: SGDR's half cosine on the real position in the cycle."""
    rng = np.random.default_rng(450 + mults[0])
    steps = fractional_steps(200)
    for _ in range(8):
        init = log_uniform(rng, 1e-4, 1.0)
        period, mult = int(rng.integers(1, 40)), int(rng.choice(mults))
        decay, end = uniform(rng, 0.3, 1.0), f32(init * uniform(rng, 0.0, 0.1))
        s = lrjax.cosine_restarts(init, period, period_mult=mult, decay=decay, end_value=end)
        ref = [cosine_restarts_closed_form(t, init, period, mult, decay, end) for t in steps]
        ctx = f"{init=} {period=} {mult=} {decay=} {end=}"
        check(at_float_steps(s, steps), ref, scale=init, context=ctx)
