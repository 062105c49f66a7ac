"""One validation vocabulary for the fronts, schedules, transforms and callbacks.

Every check names the parameter as the user wrote it and shows the value:
``check_int("num_steps", 0, minimum=1)`` raises
``ValueError: num_steps must be >= 1, got 0``.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh


def float_dtype() -> np.dtype:
    """The default float dtype: float32, or float64 under ``jax_enable_x64``.

    Read from the configuration (creating an array would compile a program).
    """
    return np.dtype(np.float64 if jax.config.jax_enable_x64 else np.float32)


def int_dtype() -> np.dtype:
    """The default int dtype: int32, or int64 under ``jax_enable_x64``."""
    return np.dtype(np.int64 if jax.config.jax_enable_x64 else np.int32)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else a ValueError naming ``name``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_count(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    at_most: str = "",
) -> int:
    """``value`` as an ``int`` (no bools, no floats), at least ``minimum`` and at most
    ``maximum`` (``at_most`` says what the maximum is and why, for the message)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        bound = "" if minimum is None else f" >= {minimum}"
        raise TypeError(f"{name} must be an int{bound}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={value} must be at most {at_most or maximum}")
    return int(value)


def check_positive_float(name: str, value: Any) -> float:
    """``value`` as a finite ``float`` > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def check_lr_range(min_lr: Any, max_lr: Any) -> tuple[float, float]:
    """``(min_lr, max_lr)`` as finite floats with ``0 < min_lr < max_lr``."""
    lo = check_positive_float("min_lr", min_lr)
    hi = check_positive_float("max_lr", max_lr)
    if lo >= hi:
        raise ValueError(f"min_lr must be < max_lr, got min_lr={min_lr!r}, max_lr={max_lr!r}")
    return lo, hi


def check_optional_bool(name: str, value: Any) -> bool | None:
    """``True``, ``False`` or ``None``."""
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{name} must be True, False or None, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


# ------------------------------------------ hyperparameters known at construction
# Schedules and transforms check a value when it is concrete (a Python or NumPy
# number); a tracer or an array (a stacked or traced schedule) is not checked.


def _numbers(name: str, value: Any, many: bool) -> list[Any]:
    """The numbers in ``value``; a list or tuple only where ``many`` (else TypeError)."""
    if isinstance(value, (list, tuple)):
        if not many:
            raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
        return list(value)
    return [value]


def check_finite(name: str, value: Any, *, many: bool = False) -> None:
    """Raises ValueError unless every number in ``value`` is finite.

    ``value`` is one number, or a list of them with ``many=True``.
    """
    for v in _numbers(name, value, many):
        if isinstance(v, bool) or not isinstance(v, (numbers.Real, np.number)):
            raise TypeError(f"{name} must be a real number, got {v!r} ({type(v).__name__})")
        if not math.isfinite(float(v)):
            raise ValueError(f"{name} must be finite, got {v!r}")


def check_int(name: str, value: Any, *, minimum: int | None = None, many: bool = False) -> None:
    """Raises unless ``value`` is an integral number (>= ``minimum`` if given).

    ``value`` is one number, or a list of them with ``many=True``. It must also
    fit JAX's default int (int32 unless ``jax_enable_x64``), which steps use.
    """
    check_finite(name, value, many=many)
    top = np.iinfo(int_dtype()).max
    for v in _numbers(name, value, many):
        if float(v) != int(v):
            raise ValueError(f"{name} must be an integer, got {v!r}")
        if minimum is not None and int(v) < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {v!r}")
        if int(v) > top:
            raise ValueError(f"{name} must be <= {top} (steps are {int_dtype()}), got {v!r}")


def check_positive(name: str, value: Any, *, strict: bool = True) -> None:
    """Raises unless ``value`` is a finite number > 0 (>= 0 with ``strict=False``)."""
    check_finite(name, value)
    if (strict and not value > 0) or (not strict and not value >= 0):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be {op} 0, got {value!r}")


def check_sorted(name: str, values: Sequence[Any], *, strict: bool = True) -> None:
    """Raises unless ``values`` is (strictly) increasing."""
    for a, b in itertools.pairwise(values):
        if (strict and not a < b) or (not strict and not a <= b):
            kind = "strictly increasing (no duplicates)" if strict else "non-decreasing"
            raise ValueError(f"{name} must be {kind}, got {list(values)!r}")


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


def check_transformation(tx: Any, who: str) -> None:
    """Raises TypeError unless ``tx`` (what ``who`` returned) is an Optax transformation."""
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(
            f"{who} must return an optax.GradientTransformation, got {type(tx).__name__}"
        )


def _is_transformation(x: Any) -> bool:
    return hasattr(x, "init") and hasattr(x, "update")


def check_rate_optimizer(optimizer: Any, name: str = "optimizer") -> None:
    """Raises TypeError unless ``optimizer(lr)`` gives an Optax transformation."""
    if not callable(optimizer) or _is_transformation(optimizer):
        raise TypeError(
            f"{name} must be a callable lr -> optax.GradientTransformation (e.g. optax.adam), "
            f"got {optimizer!r}"
        )
    check_transformation(optimizer(1e-3), f"{name}(lr)")


def check_factory(make_optimizer: Any, settings: Any, what: str) -> None:
    """Raises unless ``make_optimizer(**setting)`` gives an Optax transformation for
    every setting (concrete values: schedules check theirs here, before anything
    compiles); an error names the setting (``what`` says which, e.g. ``"grid
    setting"``)."""
    if not callable(make_optimizer) or _is_transformation(make_optimizer):
        raise TypeError(
            f"make_optimizer must be a callable (**values) -> GradientTransformation, "
            f"got {make_optimizer!r}"
        )
    for setting in settings:
        try:
            tx = make_optimizer(**setting)
        except (ValueError, TypeError) as e:
            shown = {k: v.item() if hasattr(v, "item") else v for k, v in setting.items()}
            raise type(e)(f"{what} {shown}: {e}") from None
        check_transformation(tx, "make_optimizer(**values)")


# --------------------------------------------------- transforms and callbacks
#
# A hyperparameter is checked when its value is known at construction: a Python
# or NumPy number, or a concrete JAX array (``optax.inject_hyperparams`` passes
# those). A tracer (the transform built inside ``jax.jit`` or ``jax.vmap``) is not
# checked: its value does not exist yet, and branching on it would break tracing.


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


# ------------------------------------------------- runs: the fronts' shared arguments


def check_diverge_factor(diverge_factor: Any) -> float:
    """``diverge_factor`` as a float > 1 (``None`` or ``inf``: never on loss growth)."""
    if diverge_factor is None:
        return math.inf
    if isinstance(diverge_factor, bool) or not isinstance(diverge_factor, numbers.Real):
        raise TypeError(f"diverge_factor must be a number > 1 or None, got {diverge_factor!r}")
    f = float(diverge_factor)
    if math.isnan(f) or f <= 1:
        raise ValueError(f"diverge_factor must be > 1 (or None to disable), got {diverge_factor!r}")
    return f


def check_key(key: Any) -> np.ndarray:
    """A PRNG key (``jax.random.PRNGKey(n)`` or ``jax.random.key(n)``) as raw data."""
    if key is None:  # PRNGKey(0)'s data, without running JAX
        return np.zeros(2, np.uint32)
    try:
        arr = jnp.asarray(key)
    except TypeError:
        raise TypeError(f"key must be a jax.random.PRNGKey, got {key!r}") from None
    if jnp.issubdtype(arr.dtype, jax.dtypes.prng_key):
        if arr.shape != ():
            raise ValueError(f"key must be a single PRNG key, got a key array of shape {arr.shape}")
        return np.asarray(jax.random.key_data(arr))
    if arr.dtype != jnp.uint32 or arr.shape != (2,):
        raise ValueError(
            f"key must be a jax.random.PRNGKey (uint32[2]) or jax.random.key, got "
            f"{arr.dtype}{list(arr.shape)}"
        )
    return np.asarray(arr)


def check_params(params: Any, name: str = "params") -> None:
    """Raises unless ``params`` is a non-empty pytree of finite float arrays."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    if not leaves:
        raise ValueError(f"{name} must be a pytree with at least one array, got {type(params)}")
    for path, leaf in leaves:
        where = f"{name}{jax.tree_util.keystr(path)}"
        try:
            dtype = jnp.result_type(leaf)
        except TypeError:
            raise TypeError(
                f"{where} must be a float array to be trained, got {type(leaf).__name__}"
            ) from None
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"{where} must be a float array to be trained, got dtype {dtype}")
        if not isinstance(leaf, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(leaf))):
            raise ValueError(f"{where} holds non-finite values (NaN or inf); cannot train from it")


def check_chunk_size(chunk_size: Any) -> int | str | None:
    """``chunk_size`` as ``None``, ``"auto"`` or an int >= 1."""
    if chunk_size is None or chunk_size == "auto":
        return chunk_size
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral):
        raise TypeError(f"chunk_size must be an int >= 1, 'auto' or None, got {chunk_size!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, 'auto' or None, got {chunk_size!r}")
    return int(chunk_size)


def check_eval_every(eval_every: Any, num_steps: int, has_val: bool) -> int | None:
    """``eval_every`` as ``None`` or an int in ``[1, num_steps]`` (needs ``val_batches``)."""
    if eval_every is None:
        return None
    n = check_count("eval_every", eval_every, minimum=1)
    if not has_val:
        raise ValueError(f"eval_every={eval_every!r} needs val_batches to evaluate on")
    if n > num_steps:
        raise ValueError(f"eval_every must be <= num_steps ({num_steps}), got {eval_every!r}")
    return n


def check_mesh(mesh: Any) -> Mesh | None:
    """``None``, a ``jax.sharding.Mesh``, or a sequence of devices (a 1-D mesh)."""
    if mesh is None or isinstance(mesh, Mesh):
        return mesh
    try:
        devices = list(mesh)
    except TypeError:
        raise TypeError(
            f"mesh must be a jax.sharding.Mesh, a sequence of devices or None, got {mesh!r}"
        ) from None
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(
            f"mesh must be a jax.sharding.Mesh or a non-empty list of devices, got {mesh!r}"
        )
    return Mesh(np.array(devices), ("copies",))


def check_population_on_mesh(population: int, mesh: Any) -> None:
    """Raises ValueError unless ``population`` splits evenly over ``mesh``'s devices."""
    if mesh is not None and population % mesh.devices.size:
        n = mesh.devices.size
        raise ValueError(
            f"population={population} must be a multiple of the mesh's {n} devices to be "
            f"sharded over them (e.g. population={-(-population // n) * n})"
        )
