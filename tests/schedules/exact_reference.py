"""Every schedule structure at integer steps, from its docstring, in exact integers + float64.

The discrete part of a schedule (how many milestones are passed, ``t // step_size``,
the SGDR cycle index and position for any ``period_mult``, CLR's cycle and position,
``polynomial(cycle=True)``'s ``ceil``, which piece of a ``join`` runs, the step a
``warmup`` hands over) is computed here with NumPy ``int64`` on steps up to
``2**31 - 1`` (no overflow: every product is capped far below ``2**62``), written
from the docstrings and docs/schedules.md, not from lrjax's code. The continuous
part (a cosine of a position, a power of a fraction) is float64.

lrjax computes in float32, so a reference value is given as an *interval*: the
value ``mid`` with every continuous input exact, and the values ``lo``/``hi``
reached when every continuous input (a fraction inside a phase, a real
exponent) is moved by :data:`JITTER` relative (and absolute, for a fraction).
That is the sensitivity of the formula to float32 rounding of its inputs: near
the end of ``cosine(exponent=0.3)`` ``(1 + cos(pi z)) / 2`` loses all relative
precision and the power amplifies it, while at a milestone the value is a
product of exact factors and the interval is a few ulps wide. Integer quantities
are never moved, so an off-by-one in any of them falls outside the interval
unless the value does not depend on it.

Hyperparameters are rounded to float32 first, as lrjax uses them.
"""

from __future__ import annotations

import math

import numpy as np

import lrjax

INT_MAX = 2**31 - 1

#: Relative move of every continuous input: 2**-21 = 4.8e-7, four float32 ulps. The
#: largest float32 rounding of a phase fraction in the catalogue is ~20 ulps
#: absolute (``flat_cos`` with ``pct_start = 0.95`` divides by ``1 - pct_start``);
#: :func:`check_against_reference` adds 2e-6 x the schedule's scale for that.
JITTER = 2.0**-21


def f32(x) -> float:
    """``x`` rounded to float32, as a Python float."""
    return float(np.float32(x))


def _move(x: np.ndarray, j: int, lo: float | None = 0.0, hi: float | None = 1.0) -> np.ndarray:
    """A fraction moved by ``j`` jitters (relative and absolute), then clipped to [lo, hi]."""
    out = x * (1 + j * JITTER) + j * JITTER
    if lo is not None or hi is not None:
        out = np.clip(out, lo, hi)
    return out


def _rel(x: np.ndarray, j: int) -> np.ndarray:
    """An exponent or a ratio moved by ``j`` jitters, relatively only (0 stays exact).

    float32 ``a ** p`` is ``exp(p * log(a))``: its relative error grows with ``|p log a|``
    as if ``p`` were off by a few ulps, relatively.
    """
    return x * (1 + j * JITTER)


def half_cosine(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.cos(math.pi * z))


def restart_cycles(t: np.ndarray, period: int, mult: int):
    """SGDR cycle index, start and length for every step: cycle i lasts period * mult**i."""
    if mult == 1:
        i = t // period
        return i, i * period, np.full_like(t, period)
    i = np.zeros_like(t)
    start = np.zeros_like(t)
    length = np.full_like(t, period)
    while True:
        inside = t - start < length
        if inside.all():
            return i, start, length
        start = np.where(inside, start, start + length)
        i = np.where(inside, i, i + 1)
        length = np.where(inside, length, length * mult)  # <= 2**31 * 3: no int64 overflow


def one_cycle_phases(tf, ends, levels, anneal, j):
    """The one-cycle curve through ``levels``; phase ``k`` ends at ``ends[k]``.

    A step belongs to the first phase and to every later phase whose begin it is
    past (torch's ``step <= end`` test; the last such phase wins); inside a phase
    the fraction is ``(t - begin) / (end - begin)``, 1 from the end on, 0 for an
    empty phase.
    """
    out = np.full(tf.shape, levels[0], np.float64)
    begin = 0.0
    for k, end in enumerate(ends):
        length = end - begin
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(length != 0, (tf - begin) / (length if length != 0 else 1.0), 0.0)
        frac = np.where(tf >= end, 1.0, np.clip(frac, 0.0, 1.0))
        frac = _move(frac, j)
        w = half_cosine(frac) if anneal == "cos" else 1.0 - frac
        value = levels[k + 1] + (levels[k] - levels[k + 1]) * w
        out = np.where((tf > begin) if k else True, value, out)
        begin = end
    return out


def reference(s: lrjax.schedules.Schedule, t: np.ndarray, j: int = 0) -> np.ndarray:
    """``s`` at the integer steps ``t`` (int64, >= 0) with continuous inputs moved by ``j``."""
    t = np.asarray(t, np.int64)
    tf = t.astype(np.float64)
    name = s.name
    if name == "constant":
        return np.full(t.shape, f32(s.value))
    if name == "step_decay":
        k = t // int(s.step_size)
        return f32(s.init_value) * f32(s.gamma) ** _rel(k.astype(float), j)
    if name == "multistep":
        passed = sum((t >= int(m)).astype(np.int64) for m in s.milestones)
        return f32(s.init_value) * f32(s.gamma) ** _rel(passed.astype(float), j)
    if name == "piecewise_constant":
        values = np.asarray([f32(v) for v in s.values])
        if s.at_boundary == "new":
            idx = sum((t >= int(b)).astype(np.int64) for b in s.boundaries)
        else:
            idx = sum((t > int(b)).astype(np.int64) for b in s.boundaries)
        return values[np.asarray(idx, np.int64)]
    if name == "exponential":
        c = np.maximum(t - int(s.transition_begin), 0)
        steps = int(s.decay_steps)
        p = (c // steps).astype(float) if s.staircase else c / steps
        rate = f32(s.decay_rate)
        with np.errstate(over="ignore"):  # a growing rate overflows to inf; end caps it
            out = f32(s.init_value) * rate ** _rel(p, j)
        if s.end_value is not None:
            end = f32(s.end_value)
            out = np.maximum(out, end) if rate < 1 else np.minimum(out, end)
        return out
    if name == "linear":
        frac = _move(np.clip((t - int(s.transition_begin)) / int(s.steps), 0.0, 1.0), j)
        init, end = f32(s.init_value), f32(s.end_value)
        return init + (end - init) * frac
    if name == "polynomial":
        steps = int(s.steps)
        if s.cycle:
            horizon = steps * np.maximum(-(-t // steps), 1)  # steps * ceil(t / steps), >= steps
            rest = (horizon - t) / horizon
        else:
            rest = (steps - np.minimum(t, steps)) / steps
        init, end = f32(s.init_value), f32(s.end_value)
        return (init - end) * _move(rest, j) ** f32(s.power) + end
    if name == "inverse_time":
        steps = int(s.decay_steps)
        p = (t // steps).astype(float) if s.staircase else t / steps
        return f32(s.init_value) / (1.0 + f32(s.decay_rate) * _rel(p, j))
    if name == "inverse_sqrt":
        w = int(s.warmup_steps)
        peak = f32(s.peak_value)
        x = _rel(tf / w, j)
        return np.where(t < w, peak * x, peak * np.sqrt(1.0 / np.maximum(x, 1.0)))
    if name == "rex":
        steps = int(s.steps)
        rest = _move((steps - np.minimum(t, steps)) / steps, j)
        init, end = f32(s.init_value), f32(s.end_value)
        return end + (init - end) * rest / (0.5 + 0.5 * rest)
    if name == "cosine":
        steps = int(s.steps)
        z = _move(np.minimum(t, steps) / steps, j)
        init, end = f32(s.init_value), f32(s.end_value)
        return end + (init - end) * half_cosine(z) ** f32(s.exponent)
    if name == "cosine_restarts":
        i, start, length = restart_cycles(t, int(s.period), int(s.period_mult))
        z = _move((t - start) / length, j)
        init, end = f32(s.init_value), f32(s.end_value)
        peak = (init - end) * f32(s.decay) ** _rel(i.astype(float), j)
        return end + peak * half_cosine(z)
    if name == "flat_cos":
        total, pct = int(s.total_steps), f32(s.pct_start)
        pos = np.clip(tf / total, 0.0, 1.0)
        z = _move(np.clip((pos - pct) / (1.0 - pct), 0.0, 1.0), j)
        init = f32(s.init_value)
        end = init / 1e5
        return end + (init - end) * half_cosine(z)
    if name == "wsd":
        total, w = int(s.total_steps), int(s.warmup_steps)
        decay = round(s.decay_fraction * total)  # Python's round, as its docstring fixes it
        z = _move(np.clip((t - (total - decay)) / max(decay, 1), 0.0, 1.0), j)
        shape = {"linear": 1.0 - z, "sqrt": 1.0 - np.sqrt(z), "cosine": half_cosine(z)}
        peak, end = f32(s.peak_value), f32(s.end_value)
        decayed = end + (peak - end) * shape[s.decay_shape]
        warm = peak * _rel(tf / max(w, 1), j)
        return np.where(t < w, warm, np.where(t >= total, end, decayed))
    if name == "cyclic":
        up = int(s.step_size_up)
        down = up if s.step_size_down is None else int(s.step_size_down)
        c = t // (up + down)
        pos = t - c * (up + down)
        x = _move(np.where(pos <= up, pos / up, (up + down - pos) / down), j)
        if s.mode == "triangular":
            scale = 1.0
        elif s.mode == "triangular2":
            scale = 0.5 ** _rel(c.astype(float), j)
        else:
            scale = f32(s.gamma) ** _rel(tf, j)
        base, peak = f32(s.base_value), f32(s.max_value)
        return base + (peak - base) * x * scale
    if name in ("one_cycle", "one_cycle_momentum"):
        total, pct = int(s.total_steps), f32(s.pct_start)
        shift = 1.0 if s.convention == "torch" else 0.0
        if s.three_phase:
            ends = (pct * total - shift, 2 * pct * total - 2 * shift, total - shift)
        else:
            ends = (pct * total - shift, total - shift)
        if name == "one_cycle":
            peak = f32(s.max_value)
            start = peak / f32(s.div_factor)
            if s.convention == "torch":
                end = start / f32(s.final_div_factor)
            else:
                end = peak / f32(s.final_div_factor)
        else:
            start = end = f32(s.max_momentum)
            peak = f32(s.base_momentum)
        levels = (start, peak, start, end) if s.three_phase else (start, peak, end)
        return one_cycle_phases(tf, ends, levels, s.anneal, j)
    if name == "warmup":
        w = int(s.steps)
        start = f32(s.init_value)
        first = reference(s.schedule, np.zeros(1, np.int64), j)[0]
        ramp = start + (first - start) * _move(np.clip(tf / max(w, 1), 0.0, 1.0), j)
        return np.where(t < w, ramp, reference(s.schedule, np.maximum(t - w, 0), j))
    if name == "join":
        out = reference(s.schedules[0], t, j)
        for b, piece in zip(s.boundaries, s.schedules[1:]):
            b = int(b)
            out = np.where(t < b, out, reference(piece, np.maximum(t - b, 0), j))
        return out
    if name == "clip":
        out = reference(s.schedule, t, j)
        lo = -np.inf if s.lo is None else f32(s.lo)
        hi = np.inf if s.hi is None else f32(s.hi)
        return np.clip(out, lo, hi)
    if name == "scale":
        return reference(s.schedule, t, j) * f32(s.factor)
    if name == "add":
        return reference(s.a, t, j) + reference(s.b, t, j)
    if name == "product":
        return reference(s.a, t, j) * reference(s.b, t, j)
    raise NotImplementedError(f"no reference for {name!r}")


def boundary_steps(s: lrjax.schedules.Schedule) -> set[int]:
    """The steps where ``s`` changes regime, the steps either side, and the largest.

    Milestones, boundaries, phase ends, every SGDR restart and CLR half-cycle up to
    the first few and the last few before ``2**31 - 1``, and for compositions the
    children's boundaries shifted to where they run.
    """
    out = {0, 1, 2, INT_MAX - 1, INT_MAX}

    def around(*points: float) -> None:
        for p in points:
            for q in (math.floor(p) - 1, math.floor(p), math.floor(p) + 1, math.ceil(p) + 1):
                if 0 <= q <= INT_MAX:
                    out.add(int(q))

    def multiples(k: int) -> None:
        last = INT_MAX // k
        around(*(m * k for m in (1, 2, 3, last - 1, last) if m >= 1))

    name = s.name
    if name == "step_decay":
        multiples(int(s.step_size))
    elif name == "multistep":
        around(*map(int, s.milestones))
    elif name == "piecewise_constant":
        around(*map(int, s.boundaries))
    elif name == "exponential":
        b, k = int(s.transition_begin), int(s.decay_steps)
        around(b, b + k, b + 2 * k, b + (INT_MAX - b) // k * k)
    elif name == "linear":
        b = int(s.transition_begin)
        around(b, b + int(s.steps))
    elif name == "polynomial":
        multiples(int(s.steps))
    elif name == "inverse_time":
        multiples(int(s.decay_steps))
    elif name == "inverse_sqrt":
        around(int(s.warmup_steps))
    elif name in ("rex", "cosine"):
        around(int(s.steps))
    elif name == "cosine_restarts":
        p, m = int(s.period), int(s.period_mult)
        starts = [0]
        while starts[-1] <= INT_MAX:
            starts.append(starts[-1] + p * m ** (len(starts) - 1))
            if m == 1 and len(starts) > 3:
                break
        if m == 1:
            starts += [(INT_MAX // p - k) * p for k in (0, 1)]
        around(*(x for x in starts[:4] + starts[-4:] if x <= INT_MAX))
    elif name == "flat_cos":
        total = int(s.total_steps)
        around(s.pct_start * total, total)
    elif name == "wsd":
        total = int(s.total_steps)
        around(int(s.warmup_steps), total - round(s.decay_fraction * total), total)
    elif name == "cyclic":
        up = int(s.step_size_up)
        total = up + (up if s.step_size_down is None else int(s.step_size_down))
        last = INT_MAX // total
        for c in (0, 1, 2, last - 1, last):
            around(c * total, c * total + up)
    elif name in ("one_cycle", "one_cycle_momentum"):
        total, pct = int(s.total_steps), s.pct_start
        around(pct * total, pct * total - 1, 2 * pct * total, 2 * pct * total - 2, total)
    elif name == "warmup":
        w = int(s.steps)
        around(w)
        out |= {min(w + b, INT_MAX) for b in boundary_steps(s.schedule)}
    elif name == "join":
        out |= boundary_steps(s.schedules[0])
        around(*map(int, s.boundaries))
        for b, piece in zip(s.boundaries, s.schedules[1:]):
            out |= {min(int(b) + x, INT_MAX) for x in boundary_steps(piece)}
    elif name in ("clip", "scale"):
        out |= boundary_steps(s.schedule)
    elif name in ("add", "product"):
        out |= boundary_steps(s.a) | boundary_steps(s.b)
    return out


def check_against_reference(got: np.ndarray, s, t: np.ndarray, context: str = "") -> None:
    """Asserts lrjax's float32 values at integer steps ``t`` lie in the reference interval.

    Allowed: the interval spanned by the reference with its continuous inputs
    moved by -1, 0, +1 jitters, widened by ``1e-5`` relative (float32 formula
    noise on a value of exact inputs, as the oracle tests) and ``2e-6`` x the
    largest value (absolute rounding of a ``1 + cos`` or ``1 - z`` near 0 and of a
    phase fraction, see :data:`JITTER`).
    """
    t = np.asarray(t, np.int64)
    ref = [reference(s, t, j) for j in (-1, 0, 1)]
    mid = ref[1]
    lo, hi = np.minimum.reduce(ref), np.maximum.reduce(ref)
    scale = float(np.max(np.abs(mid), initial=0.0))
    slack = 1e-5 * np.abs(mid) + 2e-6 * scale
    got = np.asarray(got, np.float64)
    bad = ~((got >= lo - slack) & (got <= hi + slack))
    if bad.any():
        k = np.flatnonzero(bad)[:5]
        raise AssertionError(
            f"{s!r}: steps {t[k].tolist()}: lrjax {got[k].tolist()} vs reference "
            f"{mid[k].tolist()} (interval [{lo[k].tolist()}, {hi[k].tolist()}]); {context}"
        )
