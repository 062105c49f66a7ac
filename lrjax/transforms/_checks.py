"""Argument checks shared by the transforms and callbacks.

A hyperparameter is checked when its value is known at construction: a Python
or NumPy number, or a concrete JAX array (``optax.inject_hyperparams`` passes
those). A tracer (the transform built inside ``jax.jit`` or ``jax.vmap``) is not
checked: its value does not exist yet, and branching on it would break tracing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def float_dtype() -> np.dtype:
    """The default float dtype: float32, or float64 under ``jax_enable_x64``."""
    return jnp.zeros((), dtype=float).dtype


def concrete(x: Any) -> np.ndarray | None:
    """``x`` as a NumPy array when its value is known now, else ``None``."""
    if isinstance(x, jax.core.Tracer):
        return None
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"expected a number, got {x!r}")
    try:
        return np.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"expected a number, got {x!r} ({type(x).__name__})") from None


def check_number(
    name: str,
    value: Any,
    ok: Callable[[np.ndarray], np.ndarray] | None = None,
    requirement: str = "",
    *,
    integer: bool = False,
    allow_inf: bool = False,
) -> None:
    """Raises ``TypeError``/``ValueError`` naming ``name`` unless ``value`` is valid.

    Args:
      name: the parameter's name, as the user wrote it.
      value: the value (skipped when it is a tracer).
      ok: a predicate on the value as a NumPy array (elementwise).
      requirement: what ``ok`` asks, for the message ("in (0, 1)").
      integer: the value must be a whole number.
      allow_inf: infinities are allowed (NaN never is).
    """
    if isinstance(value, bool) or (isinstance(value, np.ndarray) and value.dtype == np.bool_):
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        arr = concrete(value)
    except TypeError:
        kind = type(value).__name__
        raise TypeError(f"{name} must be a number, got {value!r} ({kind})") from None
    if arr is None:
        return
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a number, got {value!r} ({arr.dtype})")
    arr = arr.astype(np.float64)
    if np.any(np.isnan(arr)) or (not allow_inf and not np.all(np.isfinite(arr))):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if integer and not np.all(arr == np.round(arr)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if ok is not None and not np.all(ok(arr)):
        raise ValueError(f"{name} must be {requirement}, got {value!r}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raises ``ValueError`` unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def python_one_minus(x: Any) -> Any:
    """``1 - x``, computed in float64 when ``x`` is a Python/NumPy number.

    ``1 - 0.999`` in float32 is ``0.00099998713`` (``0.999`` is not a float32),
    an error of 1.3e-5; computed in float64 and rounded once, it is exact to
    float32 precision. Arrays and tracers fall back to ``1 - x``.
    """
    if isinstance(x, (int, float, np.floating, np.integer)):
        return 1.0 - float(x)
    return 1 - x


def check_value(value: Any, who: str) -> jax.Array:
    """The monitored ``value`` as a scalar float array; clear errors otherwise."""
    if value is None:
        raise TypeError(
            f"{who} needs the monitored quantity: call update(updates, state, params, value=loss)"
        )
    try:
        v = jnp.asarray(value)
    except TypeError:
        raise TypeError(f"value must be a number (the loss), got {value!r}") from None
    if v.ndim != 0:
        raise ValueError(f"value must be a scalar (the loss), got shape {v.shape}")
    if not (jnp.issubdtype(v.dtype, jnp.floating) or jnp.issubdtype(v.dtype, jnp.integer)):
        raise TypeError(f"value must be a real number (the loss), got dtype {v.dtype}")
    return v.astype(float_dtype())
