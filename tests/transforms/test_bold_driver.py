"""Oracle tests for ``lrjax.bold_driver`` against a brute-force Python reference.

No library ships the bold driver, so the reference is a plain Python (float64)
loop written from the docstring's rules: one check per ``accumulation_steps``
updates on their mean; the first check only records the value; a lower value
grows the scale (``min(scale * increase, max_scale)``), a higher or non-finite one
cuts it (``max(scale * decrease, min_scale)``), an equal one leaves it; only finite
values become the reference. Sequences come from a seeded
``numpy.random.default_rng``, rounded to multiples of 2**-8 so that ties are exact
in float32, with NaN and infinities sprinkled in. lrjax (float32) must match after
every update, relatively (one float32 rounding per multiply, see
:func:`assert_scales`), in the host form and in the Optax form under ``jax.jit``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrjax.transforms import BoldDriverState, bold_driver

#: float32 unit roundoff.
U32 = 2.0**-24

HPARAMS = ("increase", "decrease", "min_scale", "max_scale", "accumulation_steps")


def reference_scales(
    values: Sequence[float],
    *,
    increase: float = 1.05,
    decrease: float = 0.5,
    min_scale: float = 0.0,
    max_scale: float = 10.0,
    accumulation_steps: int = 1,
) -> np.ndarray:
    """The bold driver's scale after each update, from the docstring's rules.

    Args:
      values: the value passed to each update.
      increase: growth factor while the value falls.
      decrease: cut factor when it rises or is not finite.
      min_scale: lower bound of the scale.
      max_scale: upper bound of the scale.
      accumulation_steps: updates per check.

    Returns:
      The scale in force after each update (float64).
    """
    scale = 1.0
    previous: float | None = None  # the last finite checked value
    first = True
    pending: list[float] = []
    out = []
    for v in values:
        pending.append(float(v))
        if len(pending) == accumulation_steps:
            cur = sum(pending) / len(pending)
            pending = []
            if not first:
                if not math.isfinite(cur):
                    scale = max(scale * decrease, min_scale)
                elif previous is not None and cur < previous:
                    scale = min(scale * increase, max_scale)
                elif previous is not None and cur > previous:
                    scale = max(scale * decrease, min_scale)
            if math.isfinite(cur):
                previous = cur
            first = False
        out.append(scale)
    return np.asarray(out, np.float64)


def assert_scales(actual: Any, expected: np.ndarray, context: str) -> None:
    """Asserts lrjax's float32 scales equal the float64 reference, update by update.

    The bound is ``(2 * k + 2) * 2**-24`` relative after ``k`` changes of the
    reference scale: each change is one float32 multiply by a float32-rounded
    factor, plus the rounding of a bound. Zero must be exactly zero.

    Args:
      actual: lrjax's scales.
      expected: the reference's.
      context: printed on failure.
    """
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    assert a.shape == e.shape, (a.shape, e.shape, context)
    changes = np.concatenate([[0], np.cumsum(e[1:] != e[:-1])]) + (e[0] != 1.0)
    bad = ~(np.abs(a - e) <= (2 * changes + 2) * U32 * np.abs(e))
    if bad.any():
        i = int(np.argmax(bad))
        raise AssertionError(
            f"update {i}: lrjax scale {a[i]!r} vs reference {e[i]!r} "
            f"({int(bad.sum())} bad updates); {context}"
        )


def make_sequence(rng: np.random.Generator, kind: int, n: int) -> np.ndarray:
    """A random sequence of losses; ``kind`` picks the shape.

    Args:
      rng: the seeded generator.
      kind: 0 loss-like, 1 noisy walk, 2 coarse steps (many ties), 3 constant,
        4 negative and falling, 5 with NaN/inf sprinkled in, 6 rising.
      n: the length.

    Returns:
      ``n`` float64 values (multiples of 2**-8 where finite).
    """
    t = np.arange(n, dtype=np.float64)
    if kind == 0:
        v = 2.0 * np.exp(-t / rng.uniform(5, 40)) + rng.normal(0, 0.05, n)
    elif kind == 1:
        v = rng.normal(0, 1) + np.cumsum(rng.normal(0, 0.3, n))
    elif kind == 2:
        v = rng.integers(0, 4, n) / 4.0
    elif kind == 3:
        v = np.full(n, rng.choice([-1.0, 0.0, 0.5]))
    elif kind == 4:
        v = -1.0 - 0.05 * t + rng.normal(0, 0.1, n)
    elif kind == 5:
        v = 1.0 + np.cumsum(rng.normal(-0.01, 0.2, n))
        v = np.round(v * 256) / 256
        bad = rng.random(n) < 0.15
        v[bad] = rng.choice([np.nan, np.inf, -np.inf], int(bad.sum()))
        if rng.random() < 0.5:
            v[0] = np.nan  # a non-finite first check
        return v
    else:
        v = np.cumsum(rng.random(n) * 0.1)
    return np.round(np.asarray(v) * 256) / 256


def sample_config(rng: np.random.Generator) -> dict[str, Any]:
    """Random valid ``bold_driver`` arguments (Python numbers)."""
    return {
        "increase": float(rng.choice([1.0, 2.0, rng.uniform(1.0, 1.5), rng.uniform(1.0, 1.2)])),
        "decrease": float(rng.choice([1.0, 0.5, rng.uniform(0.05, 1.0)])),
        "min_scale": float(rng.choice([0.0, 0.0, 0.01, 0.3, 0.9])),
        "max_scale": float(rng.choice([1.0, 1.5, 10.0, math.inf])),
        "accumulation_steps": int(rng.choice([1, 1, 2, 3, 4])),
    }


def make_cases(seed: int, count: int, n: int) -> list[tuple[dict[str, Any], np.ndarray]]:
    """``count`` random (config, values) pairs of length ``n``."""
    rng = np.random.default_rng(seed)
    return [(sample_config(rng), make_sequence(rng, i % 7, n)) for i in range(count)]


#: 80 random cases of 60 updates.
CASES = make_cases(seed=1988, count=80, n=60)


@jax.jit
def chain_scales(hp: dict[str, jax.Array], values: jax.Array) -> jax.Array:
    """Scales revealed by ``optax.chain(optax.sgd(1.0), bold_driver(...))`` under jit.

    The transform is built inside ``jax.vmap`` (hyperparameters are tracers) and
    driven by ``update(grads, state, params, value=v)`` in a ``lax.scan``; with
    unit gradients the update is ``-scale``.

    Args:
      hp: hyperparameters with a leading config axis ``C``.
      values: ``[C, N]`` losses.

    Returns:
      ``[C, N]`` scales after each update.
    """

    def one(hp: dict[str, jax.Array], vals: jax.Array) -> jax.Array:
        tx = optax.chain(optax.sgd(1.0), bold_driver(**hp))
        params = {"w": jnp.zeros((2, 2))}
        grads = {"w": jnp.ones((2, 2))}

        def body(state: Any, v: jax.Array) -> tuple[Any, jax.Array]:
            updates, state = tx.update(grads, state, params, value=v)
            return state, -updates["w"][1, 0]

        return jax.lax.scan(body, tx.init(params), vals)[1]

    return jax.vmap(one)(hp, values)


def as_arrays(cfg: dict[str, Any]) -> dict[str, jax.Array]:
    """``cfg`` with every value as a scalar JAX array of the right dtype."""
    return {
        k: jnp.asarray(v, jnp.int32 if k == "accumulation_steps" else jnp.float32)
        for k, v in cfg.items()
    }


@jax.jit
def host_step(hp: dict[str, jax.Array], state: BoldDriverState, value: jax.Array) -> Any:
    """One jitted host-form update with traced hyperparameters."""
    return bold_driver(**hp).update(state, value)


def host_scales(cfg: dict[str, Any], values: Sequence[float], *, jit: bool = False) -> list[float]:
    """Scales from the host form ``s = tx.update(s, value)``.

    Args:
      cfg: ``bold_driver`` keyword arguments (Python numbers).
      values: one value per update.
      jit: use :func:`host_step` instead of eager calls with Python arguments.

    Returns:
      ``state.scale`` after each update.
    """
    tx = bold_driver(**cfg)
    state = tx.init()
    hp = as_arrays(cfg)
    out = []
    for v in values:
        state = host_step(hp, state, jnp.float32(v)) if jit else tx.update(state, float(v))
        out.append(float(state.scale))
    return out


def test_cases_cover_the_rules() -> None:
    """The reference sees growth, cuts, ties, NaN/inf, clamping and accumulation."""
    grows = cuts = 0
    for cfg, values in CASES:
        ref = reference_scales(values, **cfg)
        grows += int(np.sum(ref[1:] > ref[:-1]))
        cuts += int(np.sum(ref[1:] < ref[:-1]))
    assert grows > 200 and cuts > 200
    assert any(np.isnan(v).any() for _, v in CASES) and any(np.isinf(v).any() for _, v in CASES)
    assert any(np.isnan(v[0]) for _, v in CASES)
    assert {c["accumulation_steps"] for c, _ in CASES} == {1, 2, 3, 4}


def test_optax_chain_under_jit_matches_reference() -> None:
    """All cases, jitted and vmapped: the chained update reveals the reference scale."""
    hp = {
        k: jnp.asarray([c[k] for c, _ in CASES], jnp.int32 if k == "accumulation_steps" else None)
        for k in HPARAMS
    }
    values = jnp.asarray(np.stack([v for _, v in CASES]), jnp.float32)
    got = np.asarray(chain_scales(hp, values))
    for (cfg, vals), scales in zip(CASES, got):
        assert_scales(scales, reference_scales(vals, **cfg), f"{cfg}, values={vals.tolist()}")


def test_host_form_matches_reference() -> None:
    """The host form, eagerly with Python arguments and jitted."""
    for cfg, values in CASES[:8]:
        expected = reference_scales(values, **cfg)
        assert_scales(host_scales(cfg, values[:30]), expected[:30], f"eager; {cfg}")
    for cfg, values in CASES[8:24]:
        assert_scales(host_scales(cfg, values, jit=True), reference_scales(values, **cfg), str(cfg))


def test_per_call_jit_update_with_python_arguments() -> None:
    """``jax.jit(tx.update)`` of the chain, once per step, with Python arguments."""
    for cfg, values in CASES[24:26]:
        tx = optax.chain(optax.sgd(1.0), bold_driver(**cfg))
        params = jnp.zeros(3)
        update = jax.jit(tx.update)
        state = tx.init(params)
        got = []
        for v in values:
            updates, state = update(jnp.ones(3), state, params, value=v)
            got.append(-float(updates[0]))
        assert_scales(got, reference_scales(values, **cfg), str(cfg))


def test_state_fields() -> None:
    """``previous`` is the last finite checked mean; ``num_checks`` and ``count`` count."""
    for cfg, values in CASES[:12]:
        k = cfg["accumulation_steps"]
        state = bold_driver(**cfg).init()
        assert isinstance(state, BoldDriverState) and np.isnan(float(state.previous))
        hp = as_arrays(cfg)
        previous = math.nan
        for i, v in enumerate(values[:24]):
            state = host_step(hp, state, jnp.float32(v))
            if (i + 1) % k == 0:
                mean = float(np.mean(values[i + 1 - k : i + 1]))
                previous = mean if math.isfinite(mean) else previous
            assert int(state.num_checks) == (i + 1) // k
            assert int(state.count) == (i + 1) % k
            np.testing.assert_allclose(float(state.previous), previous, rtol=1e-6)


def test_hand_checked_examples() -> None:
    """Small runs whose scales can be read off the rules."""
    cfg = {"increase": 2.0, "decrease": 0.25, "max_scale": 4.0, "min_scale": 0.125}
    values = [1.0, 0.5, 0.25, 0.1, 0.0, 0.0, 1.0, float("nan"), 2.0, 3.0, 4.0]
    want = [1, 2, 4, 4, 4, 4, 1, 0.25, 0.125, 0.125, 0.125]
    np.testing.assert_array_equal(reference_scales(values, **cfg), want)
    assert host_scales(cfg, values) == want
    # a NaN first check changes nothing; the next finite value only becomes the reference
    assert host_scales(cfg, [float("nan"), 1.0, 0.5]) == [1, 1, 2]
    # with accumulation the check sees the mean: (1 + 3) / 2 > (0 + 1) / 2
    assert host_scales({**cfg, "accumulation_steps": 2}, [0.0, 1.0, 1.0, 3.0]) == [1, 1, 1, 0.25]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"increase": 0.9}, "increase"),
        ({"increase": float("nan")}, "increase"),
        ({"decrease": 0.0}, "decrease"),
        ({"decrease": 1.5}, "decrease"),
        ({"decrease": -0.5}, "decrease"),
        ({"min_scale": -1.0}, "min_scale"),
        ({"max_scale": 0.5}, "max_scale"),
        ({"max_scale": float("nan")}, "max_scale"),
        ({"accumulation_steps": 0}, "accumulation_steps"),
        ({"accumulation_steps": 1.5}, "accumulation_steps"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], name: str) -> None:
    """Each out-of-range argument raises ValueError naming the parameter."""
    with pytest.raises(ValueError, match=name):
        bold_driver(**kwargs)


def test_update_needs_the_value() -> None:
    """The Optax form without ``value=`` is an error, not a silent no-op."""
    tx = optax.chain(optax.sgd(1.0), bold_driver())
    params = jnp.zeros(2)
    with pytest.raises(TypeError, match="value"):
        tx.update(params, tx.init(params), params)


def test_negative_losses_hand_checked() -> None:
    """Negative losses compare by value, not by magnitude: a closed-form run.

    ``increase=2``, ``decrease=0.5``: -1.5 < -1 grows, -2 grows, -1.8 (a rise)
    cuts, a tie stays, -2.5 grows, 0.5 (crossing zero) cuts, -0.25 grows.
    """
    values = [-1.0, -1.5, -2.0, -1.8, -1.8, -2.5, 0.5, -0.25]
    cfg = {"increase": 2.0, "decrease": 0.5}
    expected = np.asarray([1.0, 2.0, 4.0, 2.0, 2.0, 4.0, 2.0, 4.0])
    np.testing.assert_array_equal(reference_scales(values, **cfg), expected)
    # powers of two: every float32 product is exact
    assert host_scales(cfg, values) == expected.tolist()
    assert host_scales(cfg, values, jit=True) == expected.tolist()


def test_shifting_losses_below_zero_changes_nothing() -> None:
    """The rule only compares values: ``v - 100`` (all negative) gives the reference of ``v``.

    Finite cases with 1, 2 or 4 values per check: on the 2**-8 grid the shifted
    sums and their means (a division by a power of two) are exact in float32, so
    every comparison is the unshifted one.
    """
    cases = [
        ({**c, "accumulation_steps": (1, 2, 4)[i % 3]}, v - 100.0)
        for i, (c, v) in enumerate(CASES)
        if np.all(np.isfinite(v))
    ][:48]
    assert all(np.all(v < 0) for _, v in cases) and len(cases) >= 40
    hp = {
        k: jnp.asarray([c[k] for c, _ in cases], jnp.int32 if k == "accumulation_steps" else None)
        for k in HPARAMS
    }
    got = np.asarray(chain_scales(hp, jnp.asarray(np.stack([v for _, v in cases]), jnp.float32)))
    changes = 0
    for (cfg, shifted), scales in zip(cases, got):
        expected = reference_scales(shifted + 100.0, **cfg)
        np.testing.assert_array_equal(reference_scales(shifted, **cfg), expected)
        assert_scales(scales, expected, f"{cfg}, values={shifted.tolist()}")
        changes += int(np.sum(expected[1:] != expected[:-1]))
    assert changes > 100
