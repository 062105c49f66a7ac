"""Helpers shared by the tests: the schedule oracles (``tests/schedules/test_oracle_*.py``),
bit-for-bit pytree comparison (checkpoint and resume tests), compile counting and
scripts run on forced host devices (the engine's and tune's tests).

lrjax is evaluated the way users run it (default float32, jitted, on a whole
``jnp.arange(n)`` at once); every reference is computed in float64 (torch's Python
floats, Keras/Optax under ``jax.enable_x64``, or plain Python closed forms).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

#: The issue's bar: max relative error per step.
RTOL = 1e-5

#: Absolute slack, as a fraction of the schedule's largest value, used where a
#: reference value is ~0 (a cosine or polynomial that ends at 0, a cyclic base of
#: 0, ...). There lrjax's float32 result is ``end + (peak - end) * w`` with ``w``
#: from ``cos``/``pow`` of a float32 phase, whose absolute rounding error is a few
#: float32 ulps of ``peak`` (eps32 = 1.2e-7; at most 1.4e-7 * peak was measured
#: where the reference is below 10% of the peak, the fastai phase curves aside,
#: which document their own slack); 1e-6 * peak is ~8 ulps. Wherever the reference
#: is at least 10% of the peak, the relative bound 1e-5 is the binding one.
ATOL_FRAC = 1e-6

_eval = jax.jit(lambda sched, t: sched(t))


def lrjax_values(sched, n: int) -> np.ndarray:
    """``sched`` at steps ``0 .. n-1`` in one jitted call, as float64 NumPy."""
    return np.asarray(_eval(sched, jnp.arange(n)), dtype=np.float64)


def check(actual, expected, *, scale: float, context: str, atol_frac: float = ATOL_FRAC):
    """Asserts ``|a - e| <= max(RTOL * |e|, atol_frac * scale)`` at every step.

    Returns the observed maximum relative error ``|a - e| / max(|e|, floor)``
    with ``floor = atol_frac * scale / RTOL`` (a tenth of ``scale``), so it is
    <= RTOL exactly when the check passes. On failure the message names the
    first bad step, both values and ``context`` (the configuration).
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, (a.shape, e.shape, context)
    assert np.all(np.isfinite(a)), f"non-finite lrjax value; {context}"
    atol = atol_frac * abs(scale)
    err = np.abs(a - e)
    bad = err > np.maximum(RTOL * np.abs(e), atol)
    if bad.any():
        i = int(np.argmax(bad))
        raise AssertionError(
            f"step {i}: lrjax {a[i]!r} vs reference {e[i]!r} "
            f"(rel err {err[i] / max(abs(e[i]), 1e-300):.3g}, {int(bad.sum())} bad steps); "
            f"{context}"
        )
    floor = max(atol / RTOL, 1e-300)
    return float(np.max(err / np.maximum(np.abs(e), floor), initial=0.0))


def f32(x: float) -> float:
    """``x`` rounded to the nearest float32, as a Python float.

    Random hyperparameters are drawn as float32 numbers and handed to both lrjax
    and the reference, so the comparison measures lrjax's arithmetic and not the
    rounding of its inputs: float32 ``gamma`` alone is off by up to 6e-8
    relative, which ``gamma ** 400`` turns into 2.4e-5.
    """
    return float(np.float32(x))


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A float32-representable float drawn uniformly from ``[lo, hi]``."""
    return f32(rng.uniform(lo, hi))


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A float32-representable float drawn log-uniformly from ``[lo, hi]``."""
    return f32(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def report(schedule: str, reference: str, n_configs: int, steps: int, max_rel: float) -> None:
    """Prints one line of the oracle table (shown with ``pytest -s``)."""
    print(
        f"\nORACLE | {schedule} | {reference} | {n_configs} configs | {steps} steps | "
        f"max rel err {max_rel:.2e}"
    )


def assert_trees_identical(a, b) -> None:
    """Same structure, and every leaf the same dtype, shape and bits."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def count_compiles(fn: Callable[[], object], name: str) -> int:
    """How many programs whose name contains ``name`` JAX compiles while ``fn()`` runs."""
    records = []

    class Handler(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if msg.startswith("Compiling") and name in msg:
                records.append(msg)

    handler = Handler()
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    finally:
        logger.removeHandler(handler)
    return len(records)


def run_on_host_devices(script: str, devices: int, timeout: float = 600) -> str:
    """Runs ``script`` in a new Python on ``devices`` forced CPU devices; its stdout.

    The device count must be set before JAX starts, hence the subprocess.
    """
    env = dict(os.environ)
    flag = f"--xla_force_host_platform_device_count={devices}"
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flag).strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout
