"""The `Schedule` base class: frozen dataclasses that are JAX pytrees.

Every numeric hyperparameter of a schedule is a pytree leaf, so a schedule can be
passed through `jax.jit` (changing a value never recompiles), stacked and
`jax.vmap`-ed. Structural choices (mode strings, whether a flag is set) are static
metadata declared per class in ``_static``.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from lrjax._checks import (
    float_dtype,
    int_dtype,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_REGISTRY: dict[str, type[Schedule]] = {}

S = TypeVar("S", bound="Schedule")


# --------------------------------------------------------------------------- dtypes


def as_float(x: ArrayLike) -> Array:
    """``x`` as an array of the default float dtype."""
    return jnp.asarray(x).astype(float_dtype())


def as_int(x: ArrayLike) -> Array:
    """``x`` as an array of the default int dtype (floats are floored first)."""
    x = jnp.asarray(x)
    dtype = int_dtype()
    if jnp.issubdtype(x.dtype, jnp.floating):
        # Clamp before the cast: float32 cannot hold 2**31 - 1, and casting an
        # out-of-range float to int is undefined in XLA.
        hi = 2**62 if dtype == np.int64 else 2**31 - 128
        x = jnp.clip(jnp.floor(x), -hi, hi)
    return x.astype(dtype)


def split_step(step: ArrayLike) -> tuple[Array, Array]:
    """Returns ``(int_step, float_step)``.

    ``int_step`` is used for exact boundary arithmetic (milestones, cycles,
    restarts): integer steps are kept as they are, float steps are floored.
    ``float_step`` feeds the continuous formulas, so a fractional step such as
    ``2.5`` interpolates where the formula is continuous.
    """
    try:
        step = jnp.asarray(step)
    except (TypeError, ValueError):
        raise TypeError(
            f"step must be an int or float (array), got {step!r} ({type(step).__name__})"
        ) from None
    if not (jnp.issubdtype(step.dtype, jnp.integer) or jnp.issubdtype(step.dtype, jnp.floating)):
        if step.dtype == jnp.bool_:
            step = step.astype(int_dtype())
        else:
            raise TypeError(f"step must be an int or float array, got dtype {step.dtype}")
    return as_int(step), as_float(step)


def step_offset(t: Array, tf: Array, begin: Array) -> Array:
    """``max(step - begin, 0)`` as a float, exact for steps up to the largest int.

    ``tf - begin`` in float32 would round both terms first: near ``2**31`` a
    float32 step is a multiple of 128, so a phase that begins at
    ``2**31 - 100`` would be off by up to 64 steps. The difference is taken in
    integers (``t`` is the floored step) and the fractional part of a float step
    is added back.
    """
    begin = as_int(begin)
    whole = jnp.maximum(jnp.maximum(t, 0) - begin, 0)  # both >= 0: no overflow
    frac = jnp.where((tf < 0) | (t < begin), 0.0, jnp.clip(tf - jnp.floor(tf), 0.0, 1.0))
    return as_float(whole) + frac


def safe_div(num: Array, den: Array) -> Array:
    """``num / den`` that is 0 where ``den == 0`` (with no NaN in the gradient)."""
    den_ok = den != 0
    return jnp.where(den_ok, num / jnp.where(den_ok, den, 1), 0)


def int_floordiv(num: Array, den: Array) -> Array:
    """Exact integer floor division, with ``den`` clamped to >= 1.

    Float division would be wrong here: XLA on CPU rewrites ``t / k`` as
    ``t * (1 / k)``, so ``floor(97 / 97)`` can come out as 0.
    """
    return jnp.floor_divide(num, jnp.maximum(den, 1))


# ------------------------------------------------------------------- validation


def _is_concrete_scalar(x: Any) -> bool:
    return isinstance(x, (numbers.Number, np.generic)) and not isinstance(x, np.ndarray)


def _is_concrete(x: Any) -> bool:
    """True for Python/NumPy scalars and (nested) lists/tuples of them.

    Arrays (NumPy or JAX) and tracers are *not* concrete here: a stacked or
    traced schedule skips validation, as the design asks.
    """
    if x is None or _is_concrete_scalar(x) or isinstance(x, (str, bytes)):
        return True  # a string is a concrete (wrong) value: validate it, do not defer
    if isinstance(x, Schedule):
        return all(_is_concrete(getattr(x, f)) for f in x._leaf_fields())
    if isinstance(x, (list, tuple)):
        return all(_is_concrete(v) for v in x)
    return False


# ------------------------------------------------------------------------- base


class Schedule:
    """A learning-rate schedule: a pure ``step -> rate`` map that is a JAX pytree.

    Subclasses are frozen dataclasses made with :func:`register`. Every field not
    listed in ``_static`` is a pytree leaf and may be a Python number, a NumPy or
    JAX array or a tracer; static fields are part of the tree structure (changing
    one recompiles, as changing the number of boundaries would).

    Calling a schedule with a step (a Python int, an int or float array of any
    shape, or a tracer) returns the rate as a float array of the same shape, so a
    schedule can be passed anywhere Optax takes an ``optax.Schedule``.
    """

    name: ClassVar[str] = ""
    _static: ClassVar[tuple[str, ...]] = ()

    # -- evaluation ---------------------------------------------------------

    def __call__(self, step: ArrayLike) -> Array:
        int_step, float_step = split_step(step)
        return as_float(self._value(int_step, float_step))

    def _value(self, t: Array, tf: Array) -> Array:
        """The rate at integer step ``t`` (float step ``tf``); elementwise."""
        raise NotImplementedError

    def _check(self) -> None:
        """Validates concrete hyperparameters; raises ValueError/TypeError."""

    def __post_init__(self) -> None:
        leaves = [getattr(self, f) for f in self._leaf_fields()]
        if all(_is_concrete(v) for v in leaves):
            for f in self._leaf_fields():
                v = getattr(self, f)
                if isinstance(v, list):
                    object.__setattr__(self, f, tuple(v))
            self._check()

    # -- pytree plumbing ----------------------------------------------------

    @classmethod
    def _leaf_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in cls._static)

    def _flatten_with_keys(self):
        children = tuple(
            (jax.tree_util.GetAttrKey(f), getattr(self, f)) for f in self._leaf_fields()
        )
        aux = tuple(getattr(self, f) for f in self._static)
        return children, aux

    @classmethod
    def _unflatten(cls, aux, children):
        # Bypass __init__: unflattening (vmap, tree_map) must never validate,
        # and may carry placeholders such as None or object() as leaves.
        obj = object.__new__(cls)
        for f, v in zip(cls._leaf_fields(), children):
            object.__setattr__(obj, f, v)
        for f, v in zip(cls._static, aux):
            object.__setattr__(obj, f, v)
        return obj

    # -- composition --------------------------------------------------------

    def __mul__(self, other: Any) -> Schedule:
        from lrjax.schedules._compose import product, scale

        if isinstance(other, Schedule):
            return product(self, other)
        return scale(self, other)

    __rmul__ = __mul__

    def __add__(self, other: Any) -> Schedule:
        from lrjax.schedules._compose import add, constant

        if not isinstance(other, Schedule):
            other = constant(other)
        return add(self, other)

    __radd__ = __add__

    # -- serialisation ------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: ``{"name": ..., <param>: <value>, ...}``.

        Nested schedules (in ``warmup``, ``join``, ...) become nested dicts.
        """
        out: dict[str, Any] = {"name": self.name}
        for f in dataclasses.fields(self):
            out[f.name] = _to_json(getattr(self, f.name))
        return out

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        try:
            return self.to_dict() == other.to_dict()  # type: ignore[attr-defined]
        except Exception:  # tracers and other unserialisable leaves
            return self is other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        params = ", ".join(
            f"{f.name}={_short_repr(getattr(self, f.name))}" for f in dataclasses.fields(self)
        )
        return f"{self.name}({params})"


def _short_repr(v: Any) -> str:
    if isinstance(v, (jax.Array, np.ndarray)) and not isinstance(v, jax.core.Tracer):
        if v.ndim == 0:
            return repr(v.item())
        return f"array{list(v.shape)}"
    return repr(v)


def _to_json(v: Any) -> Any:
    if isinstance(v, Schedule):
        return v.to_dict()
    if isinstance(v, (list, tuple)):
        return [_to_json(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (str, type(None))):
        return v
    if isinstance(v, (np.ndarray, jax.Array)):
        return _to_json(np.asarray(v).tolist())
    raise TypeError(f"cannot serialise {v!r} of type {type(v).__name__}")


def register(name: str, *, static: Sequence[str] = ()) -> Callable[[type[S]], type[S]]:
    """Class decorator: makes a frozen dataclass, a pytree, and a catalogue entry.

    Args:
      name: the catalogue name (``to_dict()["name"]``, CLI spec name).
      static: fields that are structure, not data (mode strings, flags).
    """

    def wrap(cls: type[S]) -> type[S]:
        cls.name = name
        cls._static = tuple(static)
        cls = dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)
        jax.tree_util.register_pytree_with_keys(
            cls, cls._flatten_with_keys, cls._unflatten, flatten_func=_plain_flatten
        )
        if name in _REGISTRY:
            raise RuntimeError(f"schedule name {name!r} registered twice")
        _REGISTRY[name] = cls
        return cls

    return wrap


def _plain_flatten(s: Schedule):
    children = tuple(getattr(s, f) for f in s._leaf_fields())
    aux = tuple(getattr(s, f) for f in s._static)
    return children, aux


def catalogue() -> dict[str, type[Schedule]]:
    """Every registered schedule class, by catalogue name."""
    return dict(_REGISTRY)


def from_dict(d: dict[str, Any]) -> Schedule:
    """Rebuilds a schedule from :meth:`Schedule.to_dict` output.

    Example:
      >>> import lrjax
      >>> s = lrjax.cosine(init_value=0.1, steps=100)
      >>> lrjax.schedules.from_dict(s.to_dict()) == s
      True
    """
    if not isinstance(d, dict) or "name" not in d:
        raise ValueError(f"schedule dict must have a 'name' key, got {d!r}")
    name = d["name"]
    if name not in _REGISTRY:
        raise ValueError(f"unknown schedule name {name!r}; known: {sorted(_REGISTRY)}")
    cls = _REGISTRY[name]
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in d.items():
        if k == "name":
            continue
        if k not in known:
            raise ValueError(
                f"unknown parameter {k!r} for schedule {name!r}; known: {sorted(known)}"
            )
        kwargs[k] = _from_json(v)
    return cls(**kwargs)


def _from_json(v: Any) -> Any:
    if isinstance(v, dict) and "name" in v:
        return from_dict(v)
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    return v
