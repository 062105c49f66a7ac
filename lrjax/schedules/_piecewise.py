"""Piecewise-constant schedules: constant, step decay, multistep, piecewise."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from lrjax._checks import check_choice, check_finite, check_int, check_positive, check_sorted
from lrjax.schedules._base import (
    Array,
    ArrayLike,
    Schedule,
    as_float,
    as_int,
    int_floordiv,
    register,
)


@register("constant")
class constant(Schedule):
    """A fixed rate: ``rate(t) = value``.

    Example:
      >>> import lrjax
      >>> float(lrjax.constant(0.1)(1000))
      0.1...
    """

    value: ArrayLike

    def _check(self) -> None:
        check_finite("value", self.value)

    def _value(self, t: Array, tf: Array) -> Array:
        return jnp.broadcast_to(as_float(self.value), t.shape)


@register("step_decay")
class step_decay(Schedule):
    """Decays by ``gamma`` every ``step_size`` steps (torch ``StepLR``).

    ``rate(t) = init_value * gamma ** (t // step_size)``

    Example:
      >>> import lrjax
      >>> s = lrjax.step_decay(init_value=1.0, step_size=10, gamma=0.5)
      >>> [float(s(t)) for t in (0, 9, 10, 25)]
      [1.0, 1.0, 0.5, 0.25]
    """

    init_value: ArrayLike
    step_size: ArrayLike
    gamma: ArrayLike = 0.1

    def _check(self) -> None:
        check_finite("init_value", self.init_value)
        check_int("step_size", self.step_size, minimum=1)
        check_positive("gamma", self.gamma, strict=False)

    def _value(self, t: Array, tf: Array) -> Array:
        k = int_floordiv(jnp.maximum(t, 0), as_int(self.step_size))
        return as_float(self.init_value) * as_float(self.gamma) ** as_float(k)


@register("multistep")
class multistep(Schedule):
    """Decays by ``gamma`` at each milestone (torch ``MultiStepLR``).

    ``rate(t) = init_value * gamma ** (number of milestones <= t)``: the new value
    applies at the milestone step itself. The number of milestones is part of the
    tree structure; their values are leaves (traceable, vmappable).

    Example:
      >>> import lrjax
      >>> s = lrjax.multistep(init_value=1.0, milestones=[3, 5], gamma=0.1)
      >>> [round(float(s(t)), 4) for t in (2, 3, 5)]
      [1.0, 0.1, 0.01]
    """

    init_value: ArrayLike
    milestones: Sequence[ArrayLike] | ArrayLike
    gamma: ArrayLike = 0.1

    def _check(self) -> None:
        check_finite("init_value", self.init_value)
        if not isinstance(self.milestones, (list, tuple)) or len(self.milestones) == 0:
            raise ValueError(
                f"milestones must be a non-empty list of steps, got {self.milestones!r}"
            )
        check_int("milestones", self.milestones, minimum=0, many=True)
        check_sorted("milestones", self.milestones)
        check_positive("gamma", self.gamma, strict=False)

    def _value(self, t: Array, tf: Array) -> Array:
        m = as_int(jnp.stack(jnp.broadcast_arrays(*self.milestones), axis=-1))
        passed = jnp.sum(t[..., None] >= m, axis=-1)
        return as_float(self.init_value) * as_float(self.gamma) ** as_float(passed)


@register("piecewise_constant", static=("at_boundary",))
class piecewise_constant(Schedule):
    """Takes ``values[i]`` between ``boundaries[i-1]`` and ``boundaries[i]``.

    ``at_boundary="new"`` (optax ``piecewise_constant_schedule`` after conversion,
    torch): at step ``boundaries[i]`` the rate is already ``values[i+1]``.
    ``at_boundary="old"`` (keras ``PiecewiseConstantDecay``): the old value holds at
    the boundary step, the new one from ``boundaries[i] + 1``.

    Example:
      >>> import lrjax
      >>> s = lrjax.piecewise_constant([10, 20], [1.0, 0.5, 0.1])
      >>> [round(float(s(t)), 6) for t in (9, 10, 20)]
      [1.0, 0.5, 0.1]
    """

    boundaries: Sequence[ArrayLike]
    values: Sequence[ArrayLike]
    at_boundary: str = "new"

    def _check(self) -> None:
        check_choice("at_boundary", self.at_boundary, ("new", "old"))
        if not isinstance(self.boundaries, (list, tuple)):
            raise TypeError(f"boundaries must be a list of steps, got {self.boundaries!r}")
        if not isinstance(self.values, (list, tuple)):
            raise TypeError(f"values must be a list of rates, got {self.values!r}")
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                "values must have len(boundaries) + 1 entries, got "
                f"len(values)={len(self.values)} and len(boundaries)={len(self.boundaries)}"
            )
        check_int("boundaries", self.boundaries, minimum=0, many=True)
        check_sorted("boundaries", self.boundaries)
        check_finite("values", self.values, many=True)

    def _value(self, t: Array, tf: Array) -> Array:
        vals = as_float(jnp.stack(jnp.broadcast_arrays(*self.values), axis=-1))
        if len(self.boundaries) == 0:
            return jnp.broadcast_to(vals[..., 0], t.shape)
        b = as_int(jnp.stack(jnp.broadcast_arrays(*self.boundaries), axis=-1))
        if self.at_boundary == "new":
            idx = jnp.sum(t[..., None] >= b, axis=-1)
        else:
            idx = jnp.sum(t[..., None] > b, axis=-1)
        return jnp.take_along_axis(
            jnp.broadcast_to(vals, (*t.shape, vals.shape[-1])), idx[..., None], axis=-1
        )[..., 0]
