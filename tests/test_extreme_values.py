"""Schedules at the edges of the step range: 0, 1, 2**31 - 1, floats, negatives, x64.

References are closed forms in Python float64 (with Python's exact integers
for cycle arithmetic), written here from the documented formulas, so they do
not share code with lrjax. Memory of a million-step evaluation is read from
XLA's own memory analysis of the compiled function (no timing anywhere).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lrjax
from lrjax.schedules import CATALOGUE

INT_MAX = 2**31 - 1
#: float32 interpolation ``a + (b - a) * w`` is exact only to ~2 ulp of the rates
#: (0.1 here): 0.1 + (0.001 - 0.1) * 1 is 0.001000002 in float32.
ATOL = 3e-8

#: One instance of every catalogue schedule, with non-default arguments.
SCHEDULES = {
    "constant": lambda: lrjax.constant(0.1),
    "step_decay": lambda: lrjax.step_decay(0.1, 30, gamma=0.5),
    "multistep": lambda: lrjax.multistep(0.1, [30, 80], gamma=0.5),
    "piecewise_constant": lambda: lrjax.piecewise_constant([30, 80], [0.1, 0.05, 0.01]),
    "cosine": lambda: lrjax.cosine(0.1, 100, end_value=0.001),
    "cosine_restarts": lambda: lrjax.cosine_restarts(
        0.1, 10, period_mult=2, decay=0.9, end_value=0.001
    ),
    "flat_cos": lambda: lrjax.flat_cos(0.1, 100),
    "cyclic": lambda: lrjax.cyclic(0.01, 0.1, 7, step_size_down=5),
    "one_cycle": lambda: lrjax.one_cycle(0.1, 100),
    "one_cycle_momentum": lambda: lrjax.one_cycle_momentum(100),
    "exponential": lambda: lrjax.exponential(0.1, 0.5, decay_steps=10, transition_begin=5),
    "linear": lambda: lrjax.linear(0.1, 0.001, 100, transition_begin=10),
    "polynomial": lambda: lrjax.polynomial(0.1, 0.001, 100, power=2.0, cycle=True),
    "inverse_time": lambda: lrjax.inverse_time(0.1, 0.5, decay_steps=10),
    "inverse_sqrt": lambda: lrjax.inverse_sqrt(0.1, 10),
    "rex": lambda: lrjax.rex(0.1, 100),
    "wsd": lambda: lrjax.wsd(0.1, 100, warmup_steps=10, decay_shape="sqrt"),
}

#: Compositions, for the negative / huge step checks.
COMPOSED = {
    "warmup": lambda: lrjax.warmup(lrjax.cosine(0.1, 100), 10, init_value=0.01),
    "join": lambda: lrjax.join([lrjax.linear(0.0, 0.1, 10), lrjax.cosine(0.1, 100)], [10]),
    "clip": lambda: lrjax.clip(lrjax.linear(0.0, 1.0, 10), 0.1, 0.5),
    "scale+add": lambda: lrjax.linear(0.1, 0.0, 10) * 2.0 + lrjax.constant(0.01),
}

#: Value at step 0, from the documented definitions.
START = {
    "constant": 0.1,
    "step_decay": 0.1,
    "multistep": 0.1,
    "piecewise_constant": 0.1,
    "cosine": 0.1,
    "cosine_restarts": 0.1,
    "flat_cos": 0.1,
    "cyclic": 0.01,
    "one_cycle": 0.1 / 25.0,
    "one_cycle_momentum": 0.95,
    "exponential": 0.1,
    "linear": 0.1,
    "polynomial": 0.1,
    "inverse_time": 0.1,
    "inverse_sqrt": 0.0,
    "rex": 0.1,
    "wsd": 0.0,
}


def late(name: str, t: int) -> float:
    """The value at a step ``t`` past every horizon (t >= 1000), float64 closed form."""
    if name in ("constant",):
        return 0.1
    if name == "step_decay":
        return 0.1 * 0.5 ** (t // 30)
    if name == "multistep":
        return 0.1 * 0.5**2
    if name == "piecewise_constant":
        return 0.01
    if name == "cosine":
        return 0.001
    if name == "cosine_restarts":
        i, start, length = 0, 0, 10
        while t - start >= length:  # Python ints: exact
            start, length, i = start + length, length * 2, i + 1
        cos = (1 + math.cos(math.pi * (t - start) / length)) / 2
        return 0.001 + (0.1 - 0.001) * 0.9**i * cos
    if name == "flat_cos":
        return 0.1 / 1e5
    if name == "cyclic":  # triangular, 7 up then 5 down
        r = t % 12
        return 0.01 + 0.09 * (r / 7 if r <= 7 else (12 - r) / 5)
    if name == "one_cycle":  # fastai: ends at max_value / final_div_factor
        return 0.1 / 1e5
    if name == "one_cycle_momentum":
        return 0.95
    if name == "exponential":
        return 0.1 * 0.5 ** ((t - 5) / 10)
    if name == "linear":
        return 0.001
    if name == "polynomial":  # keras cycle: the horizon grows to the next multiple
        horizon = 100 * math.ceil(t / 100)
        return (0.1 - 0.001) * (1 - t / horizon) ** 2 + 0.001
    if name == "inverse_time":
        return 0.1 / (1 + 0.5 * t / 10)
    if name == "inverse_sqrt":
        return 0.1 * math.sqrt(10 / t)
    if name in ("rex", "wsd"):
        return 0.0
    raise KeyError(name)


def test_every_catalogue_schedule_is_covered():
    assert set(SCHEDULES) == set(CATALOGUE)
    assert set(START) == set(CATALOGUE)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_steps_0_1_and_int32_max(name):
    s = SCHEDULES[name]()
    f = jax.jit(lambda s, t: s(t))
    for t in (0, 1, INT_MAX):
        forms = [s(t), s(np.int32(t)), s(jnp.asarray(t, jnp.int32)), f(s, t), s(np.asarray([t]))[0]]
        values = np.array([np.asarray(v) for v in forms], np.float32)
        assert np.all(np.isfinite(values)), (t, values)
        # Every step form, eager and jitted, agrees to float32 rounding (XLA may fuse
        # differently under jit, so the last bit can differ).
        np.testing.assert_allclose(values, values[0], rtol=1e-6, atol=0, err_msg=str(t))
        assert values[0].dtype == np.float32
    np.testing.assert_allclose(float(s(0)), START[name], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(float(s(INT_MAX)), late(name, INT_MAX), rtol=2e-6, atol=ATOL)
    np.testing.assert_allclose(float(s(1000)), late(name, 1000), rtol=2e-6, atol=ATOL)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_float_steps(name):
    s = SCHEDULES[name]()
    ints = np.arange(0, 300, dtype=np.int32)
    # Integer-valued floats are the same steps as the ints.
    np.testing.assert_array_equal(np.asarray(s(ints.astype(np.float32))), np.asarray(s(ints)))
    assert float(s(2.0)) == float(s(2))
    # A fractional step lies between its neighbours (every instance is monotone on [2, 3]).
    lo, hi = sorted((float(s(2)), float(s(3))))
    mid = float(s(2.5))
    assert lo - 1e-7 <= mid <= hi + 1e-7, (lo, mid, hi)
    # Floats beyond the int32 range: finite and within the values the schedule takes.
    huge = np.asarray(s(jnp.asarray([2.0**31, 1e12, 3.4e38], jnp.float32)))
    seen = np.asarray(s(jnp.arange(0, 5000)))
    assert np.all(np.isfinite(huge))
    assert np.all(huge >= min(seen.min(), 0.0) - 1e-7)
    assert np.all(huge <= seen.max() + 1e-7)


@pytest.mark.parametrize("name", sorted(SCHEDULES) + sorted(COMPOSED))
def test_negative_steps_give_the_value_at_step_0(name):
    s = {**SCHEDULES, **COMPOSED}[name]()
    at0 = float(s(0))
    ints = jnp.asarray([-1, -2, -7, -1000, -(2**30), -(2**31)], jnp.int32)
    floats = jnp.asarray([-0.5, -1.0, -2.5, -3e9, -1e30], jnp.float32)
    for v in (s(ints), s(floats), jax.jit(lambda s, t: s(t))(s, ints)):
        np.testing.assert_array_equal(np.asarray(v), np.full(v.shape, at0, np.float32))


@pytest.mark.parametrize("name", sorted(COMPOSED))
def test_compositions_at_int32_max(name):
    s = COMPOSED[name]()
    v = float(s(INT_MAX))
    assert math.isfinite(v)
    assert v == float(jax.jit(lambda s, t: s(t))(s, INT_MAX))


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_a_million_steps_at_once(name):
    s = SCHEDULES[name]()
    n = 1_000_000
    steps = jnp.arange(n, dtype=jnp.int32)
    compiled = jax.jit(lambda s, t: s(t)).lower(s, steps).compile()
    out = compiled(s, steps)
    assert out.shape == (n,) and out.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(out)))
    # No intermediate blow-up: XLA's scratch memory is at most ~the output itself
    # (an [n, len(boundaries)] or [n, bits] intermediate would be 10-32x larger).
    mem = compiled.memory_analysis()
    if mem is not None:
        out_bytes = n * 4
        assert mem.output_size_in_bytes == out_bytes
        assert mem.temp_size_in_bytes <= 2 * out_bytes, mem.temp_size_in_bytes
    # The vectorized values are the scalar values.
    idx = np.random.default_rng(0).choice(n, 40, replace=False)
    host = np.asarray(out)
    scalars = np.array([float(s(int(i))) for i in idx], np.float32)
    np.testing.assert_allclose(host[idx], scalars, rtol=1e-6, atol=0)  # to rounding
    np.testing.assert_allclose(host[[1000, n - 1]], [late(name, 1000), late(name, n - 1)],
                               rtol=2e-6, atol=ATOL)  # fmt: skip


X64_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp, numpy as np
    sys.path.insert(0, {tests!r})
    from test_extreme_values import SCHEDULES
    import lrjax

    steps = {steps!r}
    out = {{"dtypes": {{}}, "values": {{}}}}
    for name, make in SCHEDULES.items():
        s = make()
        v = s(jnp.asarray(steps, jnp.int64))
        out["dtypes"][name] = str(v.dtype)
        out["values"][name] = np.asarray(v).tolist()
    m = lrjax.multistep(1.0, [2**33, 2**40], gamma=0.5)
    out["multistep_x64"] = np.asarray(
        m(jnp.asarray([2**33 - 1, 2**33, 2**40 - 1, 2**40], jnp.int64))).tolist()
    X = np.random.default_rng(0).normal(size=(12, 8, 3))
    batches = (X, X @ np.array([1.0, -2.0, 0.5]))
    loss = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
    r = lrjax.range_test(loss, jnp.zeros(3), batches, min_lr=1e-3, max_lr=1.0, num_lrs=4,
                         num_steps=12, progress=False)
    out["range_test"] = {{"losses_dtype": str(r.losses.dtype),
                         "finite": bool(np.isfinite(r.losses[0, 0]).all())}}
    print(json.dumps(out))
    """
)


def test_float64_mode_in_a_subprocess():
    steps = [0, 1, 2, 37, 1000, INT_MAX, 2**40]
    code = X64_SCRIPT.format(tests=os.path.dirname(__file__), steps=steps)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not jax.config.jax_enable_x64  # nothing leaked into this process
    for name in SCHEDULES:
        assert out["dtypes"][name] == "float64", name
        v64 = np.asarray(out["values"][name])
        s = SCHEDULES[name]()
        v32 = np.asarray(s(np.asarray(steps[:-1], np.int32)), np.float64)
        np.testing.assert_allclose(v64[:-1], v32, rtol=1e-5, atol=1e-9, err_msg=name)
        assert v64[0] == pytest.approx(START[name], rel=1e-12, abs=1e-15)
        for t, v in zip(steps[4:], v64[4:]):  # 1000, 2**31 - 1 and 2**40 (int64 steps)
            assert v == pytest.approx(late(name, t), rel=1e-9, abs=1e-16), (name, t)
    # Exact int64 boundaries far beyond int32.
    assert out["multistep_x64"] == [1.0, 0.5, 0.5, 0.25]
    assert out["range_test"] == {"losses_dtype": "float64", "finite": True}
