"""Argument checks shared by the transforms and callbacks.

A hyperparameter is checked when its value is known at construction: a Python
or NumPy number, or a concrete JAX array (``optax.inject_hyperparams`` passes
those). A tracer (the transform built inside ``jax.jit`` or ``jax.vmap``) is not
checked: its value does not exist yet, and branching on it would break tracing.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax._checks import check_choice, check_number, concrete, float_dtype

__all__ = [
    "check_choice",
    "check_number",
    "check_value",
    "concrete",
    "float_dtype",
    "python_one_minus",
]


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
