"""Schedules are data: stacked and vmapped, jitted once per structure, never validated.

For every catalogue structure (each mode and convention) and every composition,
16 random valid schedules that differ in *all* numeric fields are stacked into
one pytree; ``jax.vmap`` over the stack must give the values of a Python loop
of eager calls, and a jitted evaluation must trace once for any values of one
structure (docs/schedules.md). The reference is each schedule on its
own, called eagerly: a value that leaked into the static structure, a Python
branch on a leaf, or a broadcasting slip under ``vmap`` makes them differ.
"""

from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from random_schedules import (
    CATALOGUE_STRUCTURES,
    COMPOSITION_STRUCTURES,
    STRUCTURES,
    NumpySource,
)

import lrjax
from lrjax.schedules import CATALOGUE, COMPOSITIONS, Schedule, catalogue

#: Schedules per stack.
N = 16
#: float32 agreement between a fused (vmapped, jitted) and an eager evaluation:
#: relative, plus an absolute slack of a few float32 ulps of the schedule's largest
#: value (``(1 + cos(x))`` near ``x = pi`` keeps only the absolute accuracy of
#: ``cos``, and XLA may fuse ``t / k`` as ``t * (1 / k)``), as in ``oracles.py``.
RTOL, ATOL_FRAC = 2e-6, 1e-6

#: Integer steps: every step of several periods (the step counts drawn are at most
#: 300), a negative one, and far steps up to the largest int32.
INT_STEPS = np.concatenate(
    [np.arange(-2, 720), [1000, 4099, 77_777, 10**6, 2**31 - 2, 2**31 - 1]]
).astype(np.int32)
#: Float steps, fractional in between.
FLOAT_STEPS = np.concatenate([np.arange(0, 720, 0.37), [1e6 + 0.5]]).astype(np.float32)


def draw(key: str, n: int, salt: int = 0) -> list[Schedule]:
    """``n`` random schedules of structure ``key`` (deterministic per key and salt)."""
    rng = np.random.default_rng([zlib.crc32(key.encode()), salt])
    src = NumpySource(rng)
    return [STRUCTURES[key](src) for _ in range(n)]


def stack(scheds: list[Schedule]) -> Schedule:
    """The schedules as one pytree with a leading batch axis on every leaf."""
    return jax.tree.map(lambda *x: jnp.stack(x), *scheds)


def assert_close(got: jax.Array, want: np.ndarray, steps: np.ndarray, what: str) -> None:
    """``got`` (transformed) matches ``want`` (eager) at every step; both finite."""
    got = np.asarray(got)
    assert np.all(np.isfinite(want)), (what, steps[~np.isfinite(want)][:5])
    atol = ATOL_FRAC * float(np.max(np.abs(want)))
    bad = ~(np.abs(got - want) <= RTOL * np.abs(want) + atol)
    assert not bad.any(), f"{what}: {got[bad][:3]} vs eager {want[bad][:3]} at {steps[bad][:3]}"


def test_every_catalogue_entry_and_composition_is_covered():
    names = {f(NumpySource(np.random.default_rng(0))).name for f in CATALOGUE_STRUCTURES.values()}
    assert names == set(CATALOGUE)
    comps = set()
    for f in COMPOSITION_STRUCTURES.values():
        comps.add(f(NumpySource(np.random.default_rng(0))).name)
    assert comps == set(COMPOSITIONS)
    assert set(catalogue()) == set(CATALOGUE) | set(COMPOSITIONS)


def test_draws_differ_in_every_numeric_leaf():
    """The stacks below really vary every value, step counts included."""
    for key in STRUCTURES:
        leaves = jax.tree.leaves(stack(draw(key, N)))
        assert leaves, key
        for leaf in leaves:
            assert len(np.unique(np.asarray(leaf))) > 1, (key, leaf)


@pytest.mark.parametrize("key", list(STRUCTURES))
def test_vmap_over_a_stack_equals_a_python_loop_and_jit_traces_once(key):
    traces = []

    def evaluate(s: Schedule, ti: jax.Array, tf: jax.Array):
        traces.append(1)  # runs only while tracing
        return s(ti), s(tf)

    batched = jax.jit(jax.vmap(evaluate, in_axes=(0, None, None)))
    single = jax.jit(evaluate)
    ti, tf = jnp.asarray(INT_STEPS), jnp.asarray(FLOAT_STEPS)

    first, second = draw(key, N, salt=0), draw(key, N, salt=1)
    eager: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    # The whole first stack is checked; of the second (which must not retrace),
    # a few schedules, to keep the eager loop short.
    for scheds, checked in ((first, range(N)), (second, range(3))):
        got_i, got_f = batched(stack(scheds), ti, tf)
        assert got_i.shape == (N, INT_STEPS.size) and got_f.shape == (N, FLOAT_STEPS.size)
        for k in checked:
            s = scheds[k]
            want_i, want_f = eager[id(s)] = (np.asarray(s(INT_STEPS)), np.asarray(s(FLOAT_STEPS)))
            assert_close(got_i[k], want_i, INT_STEPS, f"vmap of {s}")
            assert_close(got_f[k], want_f, FLOAT_STEPS, f"vmap of {s}")
    assert len(traces) == 1, f"the vmapped evaluation traced {len(traces)} times"

    # One schedule at a time (Python scalars as leaves): one trace for all values.
    traces.clear()
    for s in (first[0], first[1], second[2]):
        got_i, got_f = single(s, ti, tf)
        assert_close(got_i, eager[id(s)][0], INT_STEPS, f"jit of {s}")
        assert_close(got_f, eager[id(s)][1], FLOAT_STEPS, f"jit of {s}")
    assert len(traces) == 1, f"jit traced {len(traces)} times for one structure"
    assert single._cache_size() == 1


def test_changing_a_static_choice_is_a_new_structure():
    """The counterpart: static fields are structure, so they do recompile."""
    traces = []

    @jax.jit
    def evaluate(s, t):
        traces.append(1)
        return s(t)

    evaluate(lrjax.cyclic(0.1, 1.0, 10, mode="triangular"), 3)
    evaluate(lrjax.cyclic(0.2, 0.9, 7, mode="triangular"), 3)
    assert len(traces) == 1
    evaluate(lrjax.cyclic(0.1, 1.0, 10, mode="triangular2"), 3)
    assert len(traces) == 2


# ----------------------------------------------------------- no validation on trees


def _invalid(x):
    """A leaf replaced by an array that no constructor would accept."""
    return jnp.full(jnp.shape(x), -7, jnp.asarray(x).dtype)


@pytest.fixture
def count_checks(monkeypatch):
    """Counts calls of every schedule class' ``_check`` (validation)."""
    calls: list[str] = []
    for name, cls in catalogue().items():
        original = cls._check

        def wrapped(self, _original=original, _name=name):
            calls.append(_name)
            return _original(self)

        monkeypatch.setattr(cls, "_check", wrapped)
    return calls


def test_the_check_counter_sees_construction(count_checks):
    """Sanity for the tests below: building from Python numbers validates."""
    lrjax.warmup(lrjax.cosine(0.1, 10), 5)
    assert count_checks == ["cosine", "warmup"]
    with pytest.raises(ValueError, match="step_size"):
        lrjax.step_decay(0.1, -7)


@pytest.mark.parametrize("key", list(STRUCTURES))
def test_unflattening_never_validates(key, count_checks):
    scheds = draw(key, 2)
    count_checks.clear()
    leaves, treedef = jax.tree.flatten(scheds[0])

    # Arrays holding invalid values (negative step counts, a negative gamma, ...).
    bad = jax.tree.unflatten(treedef, [_invalid(x) for x in leaves])
    assert type(bad) is type(scheds[0])
    assert jax.tree.structure(jax.tree.map(_invalid, scheds[0])) == treedef
    # Stacking, and arbitrary placeholders JAX itself puts in trees.
    stacked = stack(scheds)
    jax.tree.unflatten(treedef, [object()] * len(leaves))
    jax.tree.unflatten(treedef, [None] * len(leaves))
    # Tracers (traced as jit and vmap trace, without compiling).
    jax.make_jaxpr(lambda s: jax.tree.map(lambda x: x * -1, s)(0))(scheds[0])
    jax.eval_shape(jax.vmap(lambda s: s(jnp.arange(4))), stacked)
    jax.make_jaxpr(lambda ls: jax.tree.unflatten(treedef, ls)(5))([_invalid(x) for x in leaves])
    assert count_checks == [], f"validation ran on unflatten: {count_checks}"


def test_construction_with_arrays_or_tracers_does_not_validate():
    """Under tracing (or from arrays) values are not checked; from Python numbers they are."""
    with pytest.raises(ValueError, match="steps"):
        lrjax.cosine(0.1, -3)
    # The same bad value as an array or tracer is accepted (and computes something).
    lrjax.cosine(0.1, jnp.int32(-3))
    lrjax.cosine(0.1, np.asarray(-3))
    out = jax.vmap(lambda n: lrjax.cosine(0.1, n)(5))(jnp.array([10, 0, -3]))
    assert out.shape == (3,)
    assert float(out[0]) == pytest.approx(0.1 * (1 + np.cos(np.pi * 0.5)) / 2, rel=1e-6)
    # A traced value mixed with Python numbers.
    got = jax.jit(lambda a: lrjax.multistep(a, [3, 1], gamma=-2.0)(0))(jnp.float32(0.5))
    assert float(got) == 0.5
    with pytest.raises(ValueError, match="milestones"):
        lrjax.multistep(0.5, [3, 1], gamma=-2.0)


@pytest.mark.parametrize("convention", ["fastai", "torch"])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_stacked_one_cycle_holds_its_final_value(anneal, convention):
    """From the last phase end on the final value holds exactly, also under vmap.

    (Dividing as a multiply by the reciprocal used to leave ``frac`` a few ulps
    short of 1 at ``t = total_steps``: 2.7% of the final value for ``"linear"``.)
    """
    rng = np.random.default_rng(7)
    n = 32
    maxs = rng.uniform(0.01, 1.0, n)
    totals = rng.integers(2, 300, n)
    pcts = rng.uniform(0.05, 0.9, n)
    fdfs = rng.uniform(10.0, 1e5, n)
    scheds = [
        lrjax.one_cycle(
            float(m),
            int(t),
            pct_start=float(p),
            final_div_factor=float(f),
            div_factor=25.0,
            anneal=anneal,
            convention=convention,
        )
        for m, t, p, f in zip(maxs, totals, pcts, fdfs)
    ]
    last = totals - (1 if convention == "torch" else 0)
    steps = last[:, None] + np.arange(4)[None, :]
    got = np.asarray(jax.jit(jax.vmap(lambda s, t: s(t)))(stack(scheds), steps))
    m32, f32 = maxs.astype(np.float32), fdfs.astype(np.float32)
    final = m32 / f32 if convention == "fastai" else (m32 / np.float32(25.0)) / f32
    # To an ulp or two (XLA may also divide ``max / div / final_div`` by reciprocals).
    np.testing.assert_allclose(got, np.broadcast_to(final[:, None], got.shape), rtol=3e-7)


def test_concrete_lists_and_out_of_range_ints_are_still_validated():
    """Lists are concrete: a list where a number belongs, or a step count past the
    int range, is refused at construction (it used to fail only when evaluated)."""
    with pytest.raises(TypeError, match="init_value"):
        lrjax.cosine([0.1, 0.2], 10)
    with pytest.raises(TypeError, match="gamma"):
        lrjax.multistep(0.1, [10, 20], gamma=[0.5])
    with pytest.raises(ValueError, match="steps"):
        lrjax.cosine(0.1, 2**31)
    with pytest.raises(ValueError, match="milestones"):
        lrjax.multistep(0.1, [10, 2**31])
    # Parameters that are lists take lists; the largest int32 step count is fine.
    assert float(lrjax.multistep(1.0, [1, 2], gamma=0.5)(2)) == 0.25
    assert float(lrjax.join([lrjax.constant(1.0), lrjax.constant(2.0)], [3])(3)) == 2.0
    assert float(lrjax.cosine(0.1, 2**31 - 1)(0)) == pytest.approx(0.1)
