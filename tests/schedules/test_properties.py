"""Property tests (Hypothesis) of the schedule contract in DESIGN.md section 2.

For random valid arguments of every structure: jit equals eager and every value
is finite on ``[0, 2**31 - 1]``; decays never increase (after their warmup);
cyclic schedules with a fixed amplitude repeat with period ``up + down`` and
SGDR with ``period_mult=1, decay=1`` with period ``period``; ``to_dict`` /
``from_dict`` (also through ``json``) and ``repr`` round trip. References are
the schedule's own other path (eager vs jit), shifted steps (periodicity), or
closed forms written here.
"""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
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


def schedules(keys: tuple[str, ...] = tuple(STRUCTURES)) -> st.SearchStrategy[Schedule]:
    """A random valid schedule of one of the structures ``keys``."""

    @st.composite
    def build(draw) -> Schedule:
        key = draw(st.sampled_from(keys))
        return STRUCTURES[key](DrawSource(draw))

    return build()


def int_steps(lo: int = 0, hi: int = INT_MAX) -> st.SearchStrategy[np.ndarray]:
    """``K`` int32 steps in ``[lo, hi]``."""
    return st.lists(st.integers(lo, hi), min_size=K, max_size=K).map(
        lambda v: np.asarray(v, np.int32)
    )


def close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise float32 agreement of two evaluations."""
    scale = max(float(np.max(np.abs(b), initial=0.0)), float(np.max(np.abs(a), initial=0.0)))
    return np.abs(a - b) <= RTOL * np.abs(b) + ATOL_FRAC * scale


# ------------------------------------------------------------- jit, finiteness


#: Steps every example sees: the edges and a dense stretch of the first periods.
FIXED_INT = np.concatenate([[0, 1, 2, INT_MAX - 1, INT_MAX], np.arange(3, 600, 7)]).astype(np.int32)


@given(
    schedules(),
    int_steps(),
    st.lists(st.floats(0, INT_MAX), min_size=K, max_size=K).map(
        lambda v: np.asarray(v, np.float32)
    ),
)
def test_jit_equals_eager_and_values_are_finite(s, drawn, floats):
    steps = np.concatenate([FIXED_INT, drawn])
    eager = np.asarray(s(steps))
    jitted = np.asarray(_jit(s, jnp.asarray(steps)))
    assert np.all(np.isfinite(eager)), (s, steps[~np.isfinite(eager)])
    assert np.all(close(jitted, eager)), (s, steps[~close(jitted, eager)])
    # Python ints one at a time, and float steps.
    one = np.asarray([s(t) for t in (0, int(drawn[0]), INT_MAX)])
    assert np.all(close(one, eager[[0, len(FIXED_INT), 4]])), (s, one)
    f_eager, f_jit = np.asarray(s(floats)), np.asarray(_jit(s, jnp.asarray(floats)))
    assert np.all(np.isfinite(f_eager)), (s, floats[~np.isfinite(f_eager)])
    assert np.all(close(f_jit, f_eager)), (s, floats[~close(f_jit, f_eager)])


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


@settings(max_examples=60)
@given(schedules())
def test_to_dict_from_dict_round_trip(s):
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
        steps = FIXED_INT
        np.testing.assert_array_equal(np.asarray(rebuilt(steps)), np.asarray(s(steps)))


@settings(max_examples=60)
@given(schedules())
def test_repr_shows_every_parameter_and_parses_back(s):
    text = repr(s)
    assert text.startswith(f"{s.name}(") and text.endswith(")")
    for f in dataclasses.fields(s):
        assert f"{f.name}={getattr(s, f.name)!r}" in text, (f.name, text)
    # The repr is a valid CLI spec for the same schedule.
    assert parse_spec(text) == s


def test_schedules_differing_in_one_parameter_are_unequal():
    a = lrjax.cosine(0.1, 100)
    assert a == lrjax.cosine(0.1, 100)
    assert a != lrjax.cosine(0.1, 101)
    assert a != lrjax.rex(0.1, 100)
    assert lrjax.warmup(a, 10) != lrjax.warmup(lrjax.cosine(0.2, 100), 10)
