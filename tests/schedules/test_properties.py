"""Property tests (Hypothesis) of the schedule contract in docs/schedules.md.

Every schedule structure (``random_schedules.STRUCTURES``, 53 of them) gets its
own test, on every run: random valid arguments (Hypothesis, derandomized by the
profile in ``tests/conftest.py``) and four edge examples (every argument at the
low end of its range, the high end, and alternating), each evaluated at its own
boundary steps (step 0, every milestone / boundary / restart / phase end with the
steps either side, the last ones before ``2**31 - 1``, and that step). There jit
equals eager, every value is finite and equals the exact-integer reference of
``exact_reference.py``, and ``to_dict`` / ``from_dict`` / ``repr`` round trip.
Hand-picked schedules with boundaries near ``2**31`` are checked against closed
forms in Python ints and ``Fraction``. Also: decays never increase (after their
warmup); cyclic schedules with a fixed amplitude repeat with period ``up +
down`` and SGDR with ``period_mult=1, decay=1`` with period ``period``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from exact_reference import boundary_steps, check_against_reference, f32
from hypothesis import given, settings
from hypothesis import strategies as st
from random_schedules import CATALOGUE_STRUCTURES, STRUCTURES, DrawSource, Source, rate

import lrjax
from lrjax.cli import parse_spec
from lrjax.schedules import Schedule, from_dict

INT_MAX = 2**31 - 1
#: Steps per example: a fixed count, so each structure compiles (and each eager
#: op runs) with one shape only.
K = 24
#: float32 noise between two evaluations: relative, plus a few ulps of the largest value.
RTOL, ATOL_FRAC = 2e-6, 1e-6

_jit = jax.jit(lambda s, t: s(t))


def int_steps(lo: int = 0, hi: int = INT_MAX) -> st.SearchStrategy[np.ndarray]:
    """``K`` int32 steps in ``[lo, hi]``."""
    return st.lists(st.integers(lo, hi), min_size=K, max_size=K).map(
        lambda v: np.asarray(v, np.int32)
    )


def close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise float32 agreement of two evaluations."""
    scale = max(float(np.max(np.abs(b), initial=0.0)), float(np.max(np.abs(a), initial=0.0)))
    return np.abs(a - b) <= RTOL * np.abs(b) + ATOL_FRAC * scale


# ------------------------------------------- every structure: boundaries, exactness


#: Random examples per structure (Hypothesis, derandomized by the profile in
#: tests/conftest.py), on top of the 4 edge examples of each structure below.
EXAMPLES_PER_STRUCTURE = 6
#: Steps per evaluation: one shape, so each structure compiles once (int and float).
N = 256


def float_steps() -> st.SearchStrategy[np.ndarray]:
    """``N`` float32 steps: ``K`` drawn in ``[0, 2**31 - 1]``, repeated.

    ``N`` long like the int steps: after ``split_step`` both evaluate the same
    operations on the same shapes, so eager mode compiles its kernels once.
    """
    return st.lists(st.floats(0, INT_MAX), min_size=K, max_size=K).map(
        lambda v: np.resize(np.asarray(v, np.float32), N)
    )


def steps_for(s: Schedule, drawn: np.ndarray) -> np.ndarray:
    """``s``'s boundary steps (each, the one before and after), then ``drawn``, as N int32."""
    edges = sorted(boundary_steps(s))
    assert len(edges) <= N - K, (len(edges), s)
    return np.resize(np.concatenate([edges, drawn]), N).astype(np.int32)


def check_schedule(s: Schedule, drawn: np.ndarray, floats: np.ndarray) -> None:
    """The schedule contract (docs/schedules.md) for one schedule.

    At its boundary steps (step 0, every milestone / boundary / restart / phase end
    and the steps either side, the last ones before ``2**31 - 1``, and that step)
    and at ``drawn``: eager and jit agree, every value is finite and equals the
    exact-integer reference of ``exact_reference.py``; float steps are finite and
    agree under jit; ``to_dict`` / ``from_dict`` (also through ``json``) and
    ``repr`` round trip.
    """
    d = s.to_dict()
    assert _is_plain_json(d), d
    assert d["name"] == s.name
    assert set(d) == {"name"} | {f.name for f in dataclasses.fields(s)}
    text = json.dumps(d)
    assert json.loads(text) == d
    for rebuilt in (from_dict(d), from_dict(json.loads(text))):
        assert type(rebuilt) is type(s)
        assert rebuilt == s
        assert jax.tree.structure(rebuilt) == jax.tree.structure(s)
    text = repr(s)
    assert text.startswith(f"{s.name}(") and text.endswith(")")
    for f in dataclasses.fields(s):
        assert f"{f.name}={getattr(s, f.name)!r}" in text, (f.name, text)
    assert parse_spec(text) == s  # the repr is a valid CLI spec for the same schedule

    steps = steps_for(s, drawn)
    eager = np.asarray(s(steps))
    jitted = np.asarray(_jit(s, jnp.asarray(steps)))
    assert np.all(np.isfinite(eager)), (s, steps[~np.isfinite(eager)])
    assert np.all(close(jitted, eager)), (s, steps[~close(jitted, eager)])
    check_against_reference(jitted, s, steps)
    np.testing.assert_array_equal(np.asarray(from_dict(d)(steps)), eager)
    # Python ints one at a time.
    one = np.asarray([s(0), s(INT_MAX)])
    want = np.asarray(s(np.asarray([0, INT_MAX], np.int32)))
    assert np.all(close(one, want)), (s, one, want)
    f_eager, f_jit = np.asarray(s(floats)), np.asarray(_jit(s, jnp.asarray(floats)))
    assert np.all(np.isfinite(f_eager)), (s, floats[~np.isfinite(f_eager)])
    assert np.all(close(f_jit, f_eager)), (s, floats[~close(f_jit, f_eager)])


@pytest.mark.parametrize("key", sorted(STRUCTURES))
@settings(max_examples=EXAMPLES_PER_STRUCTURE)
@given(data=st.data())
def test_every_structure_at_its_boundaries(key, data):
    s = STRUCTURES[key](DrawSource(data.draw))
    check_schedule(s, data.draw(int_steps()), data.draw(float_steps()))


class EdgeSource:
    """A :class:`Source` giving the ends of every range: ``pattern`` cycles over "lo"/"hi".

    ``"lo"`` everywhere is the smallest schedule of a structure (periods of 1,
    consecutive milestones, ``period_mult=1``, rates at their floor), ``"hi"`` the
    largest (``period_mult=3``, ``gamma=1``, ``decay_fraction=1``); the mixed
    patterns pair small periods with large multipliers and the like.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern.split("-")
        self.calls = 0

    def _pick(self, lo, hi):
        end = self.pattern[self.calls % len(self.pattern)]
        self.calls += 1
        return lo if end == "lo" else hi

    def int(self, lo: int, hi: int) -> int:
        return self._pick(lo, hi)

    def float(self, lo: float, hi: float) -> float:
        return self._pick(lo, hi)


EDGES = ("lo", "hi", "lo-hi", "hi-lo")


@pytest.mark.parametrize("edge", EDGES)
@pytest.mark.parametrize("key", sorted(STRUCTURES))
def test_every_structure_at_the_edges_of_its_arguments(key, edge):
    s = STRUCTURES[key](EdgeSource(edge))
    rng = np.random.default_rng(0)
    check_schedule(
        s,
        rng.integers(0, INT_MAX, K, endpoint=True).astype(np.int32),
        np.resize(rng.uniform(0, INT_MAX, K).astype(np.float32), N),
    )


def test_edge_examples_cover_the_structural_corners():
    """The edge examples hold ``period_mult`` 1 and >= 2, and ``gamma = 1``."""
    mults = {STRUCTURES["cosine_restarts"](EdgeSource(e)).period_mult for e in EDGES}
    assert 1 in mults and max(mults) >= 2, mults
    assert STRUCTURES["polynomial/cycle"](EdgeSource("lo")).cycle is True
    assert STRUCTURES["cyclic/exp_range"](EdgeSource("hi")).gamma == 1.0


# ------------------------------------------- exactness at the largest steps


def _sgdr_cycle(t: int, period: int, mult: int) -> tuple[int, int, int]:
    """Cycle index, position and length of step ``t`` (Python ints, a plain walk)."""
    i, start, length = 0, 0, period
    while t - start >= length:
        start, i, length = start + length, i + 1, length * mult
    return i, t - start, length


def _sgdr(init, end, decay, period, mult):
    def value(t: int) -> float:
        i, pos, length = _sgdr_cycle(t, period, mult)
        return end + (init - end) * decay**i * (1 + math.cos(math.pi * pos / length)) / 2

    return value


def _sgdr_starts(period: int, mult: int) -> list[int]:
    starts = [0]
    while starts[-1] <= INT_MAX:
        starts.append(starts[-1] + period * mult ** (len(starts) - 1))
    return [x for x in starts if x <= INT_MAX]


def _cyclic(base, peak, up, down, halve=False):
    def value(t: int) -> float:
        c, pos = divmod(t, up + down)
        x = Fraction(pos, up) if pos <= up else Fraction(up + down - pos, down)
        return base + (peak - base) * float(x) * (0.5**c if halve else 1.0)

    return value


def _poly_cycle(init, end, steps, power):
    def value(t: int) -> float:
        horizon = steps * max(-(-t // steps), 1)
        return (init - end) * float(Fraction(horizon - t, horizon)) ** power + end

    return value


_G = float(np.float32(0.999))  # gamma as lrjax holds it (float32)
_B = INT_MAX - 100  # a phase that begins where float32 steps are multiples of 128

#: (id, schedule, steps, value at each step) with the value from Python ints /
#: ``Fraction`` and float64 closed forms: the exponent is the number of milestones
#: <= t, ``t // step_size``, the SGDR cycle by a plain walk, CLR's ``divmod``,
#: polynomial's ``ceil``.
LARGE_STEP_CASES = [
    (
        "multistep",
        lrjax.multistep(1.0, [1, 2**30, INT_MAX - 1, INT_MAX], 0.5),
        [0, 1, 2**30 - 1, 2**30, 2**30 + 1, INT_MAX - 2, INT_MAX - 1, INT_MAX],
        [0.5**e for e in (0, 1, 1, 2, 2, 2, 3, 4)],
    ),
    (
        "step_decay",
        lrjax.step_decay(1.0, 46341, 0.999),
        (ts := [46340, 46341, INT_MAX - INT_MAX % 46341 - 1, INT_MAX - INT_MAX % 46341, INT_MAX]),
        [_G ** (t // 46341) for t in ts],
    ),
    (
        "step_decay/huge",
        lrjax.step_decay(1.0, 2**30, 0.5),
        [2**30 - 1, 2**30, 2**31 - 2, INT_MAX],
        [1.0, 0.5, 0.5, 0.5],
    ),
    (
        "piecewise_constant/new",
        lrjax.piecewise_constant([2**30, INT_MAX - 1], [1.0, 2.0, 3.0]),
        [2**30 - 1, 2**30, 2**30 + 1, INT_MAX - 2, INT_MAX - 1, INT_MAX],
        [1, 2, 2, 2, 3, 3],
    ),
    (
        "piecewise_constant/old",
        lrjax.piecewise_constant([2**30, INT_MAX - 1], [1.0, 2.0, 3.0], at_boundary="old"),
        [2**30 - 1, 2**30, 2**30 + 1, INT_MAX - 2, INT_MAX - 1, INT_MAX],
        [1, 1, 2, 2, 2, 3],
    ),
    (
        "exponential/staircase",
        lrjax.exponential(1.0, 0.5, 2**28 + 3, staircase=True, transition_begin=2**30),
        (ts := [2**30, 2**30 + 2**28 + 2, 2**30 + 2**28 + 3, 2**31 - 13, 2**31 - 12, INT_MAX]),
        [0.5 ** (max(t - 2**30, 0) // (2**28 + 3)) for t in ts],
    ),
    (
        "exponential/late_begin",
        lrjax.exponential(1.0, 0.5, 10, transition_begin=_B),
        [_B - 1, _B, _B + 5, _B + 20, _B + 25, INT_MAX],
        [1.0, 1.0, 0.5**0.5, 0.25, 0.5**2.5, 0.5**10],
    ),
    (
        "linear/late_begin",
        lrjax.linear(1.0, 0.0, 50, transition_begin=_B),
        [_B - 1, _B, _B + 1, _B + 25, _B + 49, _B + 50, INT_MAX],
        [1.0, 1.0, 0.98, 0.5, 0.02, 0.0, 0.0],
    ),
    (
        # float32 steps near 2**30 are multiples of 128: an offset taken in float32
        # is off by up to 64 steps, 6e-5 of this ramp (the tolerance is 2e-5).
        "linear/long_ramp_from_2**30",
        lrjax.linear(1.0, 0.0, 2**20, transition_begin=2**30 + 1),
        (ts := [2**30, 2**30 + 1, 2**30 + 2**19 - 63, 2**30 + 2**19 + 1, 2**30 + 2**20 - 1]),
        [1.0 - min(max(t - 2**30 - 1, 0), 2**20) / 2**20 for t in ts],
    ),
    (
        "wsd/short_decay_at_the_top",
        lrjax.wsd(1.0, INT_MAX, warmup_steps=2**30, decay_fraction=100 / INT_MAX),
        [2**29, 2**30, INT_MAX - 101, INT_MAX - 100, INT_MAX - 50, INT_MAX - 1, INT_MAX],
        [0.5, 1.0, 1.0, 1.0, 0.5, 0.01, 0.0],
    ),
    (
        "inverse_time/staircase",
        lrjax.inverse_time(1.0, 1.0, 2**29 - 1, staircase=True),
        (ts := [2**29 - 2, 2**29 - 1, 2**30 - 2, 2**31 - 5, 2**31 - 4, INT_MAX]),
        [1 / (1 + t // (2**29 - 1)) for t in ts],
    ),
    (
        "polynomial/cycle",
        lrjax.polynomial(1.0, 0.0, 2**28 - 1, power=2.0, cycle=True),
        (ts := [0, 1, *(k * (2**28 - 1) + d for k in (1, 2, 7, 8) for d in (0, 1)), INT_MAX]),
        [_poly_cycle(1.0, 0.0, 2**28 - 1, 2.0)(t) for t in ts],
    ),
]
for _p, _m, _decay in ((2**20 + 7, 1, 0.9), (1, 2, 0.9), (3, 2, 0.97), (7, 3, 0.8)):
    _starts = _sgdr_starts(_p, _m)[-3:] if _m > 1 else [k * _p for k in (1, INT_MAX // _p)]
    _ts = sorted({x + d for x in _starts for d in (-1, 0, 1) if 0 <= x + d <= INT_MAX} | {INT_MAX})
    LARGE_STEP_CASES.append(
        (
            f"cosine_restarts/period={_p}/period_mult={_m}",
            lrjax.cosine_restarts(1.0, _p, period_mult=_m, decay=_decay, end_value=0.01),
            _ts,
            [_sgdr(1.0, f32(0.01), f32(_decay), _p, _m)(t) for t in _ts],
        )
    )
for _mode, _up, _down in (("triangular", 2**29, 2**29 + 5), ("exp_range", 2**29, None)):
    _total = _up + (_up if _down is None else _down)
    _ts = [_total - 1, _total, _total + _up - 1, _total + _up, _total + _up + 1, INT_MAX]
    _ref = _cyclic(0.1, 1.0, _up, _up if _down is None else _down)
    LARGE_STEP_CASES.append(
        (
            f"cyclic/{_mode}",
            lrjax.cyclic(0.1, 1.0, _up, step_size_down=_down, mode=_mode, gamma=1.0),
            _ts,
            [_ref(t) for t in _ts],
        )
    )
_ts = [c * 2**28 + d for c in (1, 6, 7) for d in (0, 2**27 - 1, 2**27)] + [INT_MAX]
LARGE_STEP_CASES += [
    (
        "cyclic/triangular2",
        lrjax.cyclic(0.1, 1.0, 2**27, mode="triangular2"),
        _ts,
        [_cyclic(f32(0.1), 1.0, 2**27, 2**27, halve=True)(t) for t in _ts],
    ),
    (
        "join/late_boundaries",
        lrjax.join(
            [lrjax.constant(1.0), lrjax.linear(1.0, 0.0, 100), lrjax.constant(3.0)],
            [2**31 - 201, INT_MAX],
        ),
        [2**31 - 202, 2**31 - 201, 2**31 - 151, 2**31 - 102, INT_MAX - 1, INT_MAX],
        [1.0, 1.0, 0.5, 0.01, 0.0, 3.0],
    ),
    (
        "warmup/long",
        lrjax.warmup(lrjax.cosine(1.0, 100), INT_MAX - 150, init_value=0.0),
        [2**30, INT_MAX - 150, INT_MAX - 100, INT_MAX - 50],
        [2**30 / (INT_MAX - 150), 1.0, 0.5, 0.0],
    ),
]


@pytest.mark.parametrize(
    ("s", "steps", "expected"),
    [pytest.param(s, t, e, id=name) for name, s, t, e in LARGE_STEP_CASES],
)
def test_integer_arithmetic_is_exact_at_the_largest_steps(s, steps, expected):
    """Values at steps up to ``2**31 - 1`` against closed forms in exact integers.

    Tolerance: 2e-5 relative (float32 noise, plus ``0.999 ** 46340`` computed as
    ``exp(46340 * log(0.999))`` in float32: ~46 x 2**-24 = 3e-6) and 1e-6 absolute
    (a phase fraction that is 1 - 2**-30 in exact arithmetic is 1 in float32). An
    off-by-one in any integer is at least a factor 0.999 (1e-3), or a jump from a
    value near 0 to one above 0.01.
    """
    assert len(steps) <= 16
    # Padded to 16 steps (repeats): one shape for every case, so eager mode
    # compiles its per-operation kernels once.
    t = np.resize(np.asarray(steps, np.int64), 16)
    expected = np.resize(np.asarray(expected, np.float64), 16)
    assert t.min() >= 0 and t.max() <= INT_MAX
    for got in (_jit(s, jnp.asarray(t, jnp.int32)), s(t.astype(np.int32))):
        np.testing.assert_allclose(np.asarray(got, np.float64), expected, rtol=2e-5, atol=1e-6)
    check_against_reference(np.asarray(_jit(s, jnp.asarray(t, jnp.int32))), s, t)


# ------------------------------------------------------------------ monotonicity


def _one_cycle_anneal(src: Source) -> tuple[Schedule, int]:
    conv = "torch" if src.int(0, 1) else "fastai"
    s = lrjax.one_cycle(
        rate(src),
        src.int(2, 300),
        pct_start=src.float(0.05, 0.9),
        div_factor=src.float(2.0, 50.0),
        final_div_factor=src.float(10.0, 1e5),
        anneal="linear" if src.int(0, 1) else "cos",
        convention=conv,
    )
    # The peak is at pct_start * total_steps (minus 1 for torch); +1 for float32 rounding.
    return s, math.ceil(s.pct_start * s.total_steps) + 1


def _sorted_values(src: Source, k: int) -> list[float]:
    values = [rate(src)]
    for _ in range(k):
        values.append(values[-1] * src.float(0.0, 1.0))
    return values


def _piecewise_decreasing(src: Source) -> Schedule:
    b = [src.int(0, 100)]
    b += [b[-1] + src.int(1, 100), b[-1] + src.int(101, 200)]
    return lrjax.piecewise_constant(
        b, _sorted_values(src, 3), at_boundary="old" if src.int(0, 1) else "new"
    )


def _from_zero(key: str):
    return lambda src: (CATALOGUE_STRUCTURES[key](src), 0)


#: Decaying schedules and the step from which they must not increase.
DECAYS = {
    "step_decay": _from_zero("step_decay"),
    "multistep": _from_zero("multistep"),
    "piecewise_constant": lambda src: (_piecewise_decreasing(src), 0),
    "exponential": lambda src: (
        lrjax.exponential(
            rate(src),
            src.float(0.05, 1.0),
            decay_steps=src.int(1, 60),
            staircase=bool(src.int(0, 1)),
            transition_begin=src.int(0, 60),
            end_value=src.float(0.0, 0.01) if src.int(0, 1) else None,
        ),
        0,
    ),
    "linear": lambda src: (
        lrjax.linear(
            init := rate(src), init * src.float(0.0, 1.0), src.int(1, 300), src.int(0, 100)
        ),
        0,
    ),
    "polynomial": _from_zero("polynomial"),
    "cosine": _from_zero("cosine"),
    "rex": _from_zero("rex"),
    "inverse_time": _from_zero("inverse_time"),
    "inverse_time/staircase": _from_zero("inverse_time/staircase"),
    "inverse_sqrt": lambda src: ((s := CATALOGUE_STRUCTURES["inverse_sqrt"](src)), s.warmup_steps),
    "flat_cos": _from_zero("flat_cos"),
    "wsd/linear": lambda src: ((s := CATALOGUE_STRUCTURES["wsd/linear"](src)), s.warmup_steps),
    "wsd/sqrt": lambda src: ((s := CATALOGUE_STRUCTURES["wsd/sqrt"](src)), s.warmup_steps),
    "wsd/cosine": lambda src: ((s := CATALOGUE_STRUCTURES["wsd/cosine"](src)), s.warmup_steps),
    "one_cycle anneal": _one_cycle_anneal,
    "warmup(cosine)": lambda src: (
        (s := lrjax.warmup(CATALOGUE_STRUCTURES["cosine"](src), src.int(0, 100))),
        s.steps,
    ),
}


@given(st.sampled_from(sorted(DECAYS)), st.data())
def test_decays_never_increase(key, data):
    s, start = DECAYS[key](DrawSource(data.draw))
    drawn = data.draw(int_steps(0, 3000))
    steps = np.sort(np.concatenate([np.arange(600), drawn, [10**6, INT_MAX - 1, INT_MAX]]))
    steps = (steps + start).clip(max=INT_MAX).astype(np.int32)
    floats = np.sort(np.arange(0, 600, 0.37) + start).astype(np.float32)
    for t in (steps, floats):
        v = np.asarray(_jit(s, jnp.asarray(t)))
        rise = np.diff(v)
        slack = ATOL_FRAC * float(np.max(np.abs(v)))
        assert np.all(rise <= slack), (s, t[1:][rise > slack][:5], rise.max())


# -------------------------------------------------------------------- periodicity


@given(
    st.sampled_from(["triangular", "exp_range"]),
    st.floats(0.0, 0.5),
    st.floats(0.5, 2.0),
    st.integers(1, 100),
    st.one_of(st.none(), st.integers(1, 100)),
    int_steps(0, INT_MAX - 1000),
    st.integers(1, 4),
)
def test_cyclic_with_fixed_amplitude_is_periodic(mode, base, peak, up, down, t, k):
    s = lrjax.cyclic(base, peak, up, step_size_down=down, mode=mode, gamma=1.0)
    period = up + (up if down is None else down)
    v = np.asarray(s(np.concatenate([t, t + k * period])))
    np.testing.assert_array_equal(v[:K], v[K:])  # exact integer cycles: bit-identical
    # The period is up + down (not 2 * up): peak at c * period + up, base at c * period.
    c = t // period
    ends = np.asarray(s(np.concatenate([c * period, c * period + up])), np.float64)
    np.testing.assert_allclose(ends[:K], base, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ends[K:], peak, rtol=1e-6)


@given(
    st.floats(0.0, 0.1),
    st.floats(0.5, 2.0),
    st.integers(1, 60),
    st.one_of(st.none(), st.integers(1, 60)),
    st.lists(st.integers(0, 10**4), min_size=K, max_size=K).map(np.asarray),
)
def test_triangular2_halves_the_amplitude_each_cycle(base, peak, up, down, t):
    s = lrjax.cyclic(base, peak, up, step_size_down=down, mode="triangular2")
    period = up + (up if down is None else down)
    t = t % (8 * period)  # keep the amplitude well above float32 noise
    v = np.asarray(s(np.concatenate([t, t + period])), np.float64)
    np.testing.assert_allclose(v[K:] - base, (v[:K] - base) / 2, rtol=1e-5, atol=1e-6 * peak)


@given(
    st.floats(0.01, 1.0),
    st.floats(0.0, 0.01),
    st.integers(1, 200),
    int_steps(0, INT_MAX - 1000),
    st.integers(1, 4),
)
def test_cosine_restarts_without_growth_or_decay_is_periodic(init, end, period, t, k):
    s = lrjax.cosine_restarts(init, period, period_mult=1, decay=1.0, end_value=end)
    v = np.asarray(_jit(s, jnp.asarray(np.concatenate([t, t + k * period]))))
    np.testing.assert_array_equal(v[:K], v[K:])
    restart = np.asarray(_jit(s, jnp.asarray((t // period) * period)))
    np.testing.assert_allclose(restart, init, rtol=1e-6)


@given(
    st.floats(0.01, 1.0),
    st.floats(0.0, 0.01),
    st.integers(1, 50),
    st.integers(2, 4),
    st.floats(0.3, 1.0),
)
def test_cosine_restarts_restart_at_the_closed_form_steps(init, end, period, mult, decay):
    s = lrjax.cosine_restarts(init, period, period_mult=mult, decay=decay, end_value=end)
    # Cycle i starts at period * (mult**i - 1) / (mult - 1) and lasts period * mult**i
    # (Python ints, exact); 12 cycles stay below 2**31 for these arguments.
    starts = [period * (mult**i - 1) // (mult - 1) for i in range(12)]
    lengths = [period * mult**i for i in range(12)]
    steps = np.asarray(starts + [b + n - 1 for b, n in zip(starts, lengths)], np.int32)
    got = np.asarray(_jit(s, jnp.asarray(steps)), np.float64)
    peaks = [(init - end) * decay**i for i in range(12)]
    at_start = [end + p for p in peaks]
    at_last = [end + p * (1 + math.cos(math.pi * (n - 1) / n)) / 2 for p, n in zip(peaks, lengths)]
    np.testing.assert_allclose(got, at_start + at_last, rtol=1e-5, atol=1e-6 * init)


# ----------------------------------------------------------- serialisation, repr


def _is_plain_json(x) -> bool:
    if isinstance(x, dict):
        return all(isinstance(k, str) and _is_plain_json(v) for k, v in x.items())
    if isinstance(x, list):
        return all(_is_plain_json(v) for v in x)
    return x is None or type(x) in (bool, int, float, str)


def test_schedules_differing_in_one_parameter_are_unequal():
    a = lrjax.cosine(0.1, 100)
    assert a == lrjax.cosine(0.1, 100)
    assert a != lrjax.cosine(0.1, 101)
    assert a != lrjax.rex(0.1, 100)
    assert lrjax.warmup(a, 10) != lrjax.warmup(lrjax.cosine(0.2, 100), 10)
