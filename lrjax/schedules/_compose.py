"""Schedules built from schedules: warmup, join, clip, sums and products.

Each composition is a schedule too (a pytree whose children include the pieces),
so it can be jitted, vmapped and serialised like any other.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from lrjax._checks import check_finite, check_int, check_sorted
from lrjax.schedules._base import Array, ArrayLike, Schedule, as_float, as_int, register, split_step
from lrjax.schedules._piecewise import constant

__all__ = ["add", "clip", "constant", "join", "product", "scale", "warmup"]


def _shift(step: ArrayLike, offset: Array) -> Array:
    """``max(step - offset, 0)`` in the step's own dtype (int stays exact)."""
    step = jnp.asarray(step)
    if jnp.issubdtype(step.dtype, jnp.floating):
        return jnp.maximum(step - as_float(offset), 0)
    return jnp.maximum(as_int(step) - offset, 0)


def _check_schedule(name: str, s: object) -> None:
    if not isinstance(s, Schedule):
        raise TypeError(f"{name} must be an lrjax Schedule, got {s!r} ({type(s).__name__})")


@register("warmup")
class warmup(Schedule):
    """Linear warmup in front of another schedule.

    ``rate(t) = init_value + (schedule(0) - init_value) * t / steps`` for
    ``t < steps``, then ``schedule(t - steps)``.

    Example:
      >>> import lrjax
      >>> s = lrjax.warmup(lrjax.cosine(init_value=1.0, steps=100), steps=10)
      >>> [float(s(t)) for t in (0, 5, 10)]
      [0.0, 0.5, 1.0]
    """

    schedule: Schedule
    steps: ArrayLike
    init_value: ArrayLike = 0.0

    def _check(self) -> None:
        _check_schedule("schedule", self.schedule)
        check_int("steps", self.steps, minimum=0)
        check_finite("init_value", self.init_value)

    def __call__(self, step: ArrayLike) -> Array:
        t, tf = split_step(step)
        w = as_int(self.steps)
        start = as_float(self.init_value)
        peak = self.schedule(0)
        frac = jnp.clip(tf / as_float(jnp.maximum(w, 1)), 0.0, 1.0)
        ramp = start + (peak - start) * frac
        after = self.schedule(_shift(step, w))
        return jnp.where(t < w, ramp, after)


@register("join")
class join(Schedule):
    """Runs ``schedules[i]`` from ``boundaries[i-1]`` on, each from its own step 0.

    As ``optax.join_schedules``: at ``t >= boundaries[i-1]`` the rate is
    ``schedules[i](t - boundaries[i-1])``.

    Example:
      >>> import lrjax
      >>> s = lrjax.join([lrjax.constant(1.0), lrjax.linear(1.0, 0.0, 10)], [5])
      >>> [float(s(t)) for t in (4, 5, 10)]
      [1.0, 1.0, 0.5]
    """

    schedules: Sequence[Schedule]
    boundaries: Sequence[ArrayLike]

    def _check(self) -> None:
        if not isinstance(self.schedules, (list, tuple)) or not self.schedules:
            raise ValueError(f"schedules must be a non-empty list, got {self.schedules!r}")
        for i, s in enumerate(self.schedules):
            _check_schedule(f"schedules[{i}]", s)
        if not isinstance(self.boundaries, (list, tuple)):
            raise TypeError(f"boundaries must be a list of steps, got {self.boundaries!r}")
        if len(self.boundaries) != len(self.schedules) - 1:
            raise ValueError(
                "boundaries must have len(schedules) - 1 entries, got "
                f"len(boundaries)={len(self.boundaries)}, len(schedules)={len(self.schedules)}"
            )
        check_int("boundaries", self.boundaries, minimum=0, many=True)
        check_sorted("boundaries", self.boundaries)

    def __post_init__(self) -> None:
        if isinstance(self.schedules, list):
            object.__setattr__(self, "schedules", tuple(self.schedules))
        super().__post_init__()

    def __call__(self, step: ArrayLike) -> Array:
        t, _ = split_step(step)
        out = self.schedules[0](step)
        for b, s in zip(self.boundaries, self.schedules[1:]):
            b = as_int(b)
            out = jnp.where(t < b, out, s(_shift(step, b)))
        return out


@register("clip")
class clip(Schedule):
    """Clamps a schedule to ``[lo, hi]`` (either bound may be ``None``).

    Example:
      >>> import lrjax
      >>> s = lrjax.clip(lrjax.linear(1.0, 0.0, 10), lo=0.2)
      >>> float(s(10))
      0.2...
    """

    schedule: Schedule
    lo: ArrayLike | None = None
    hi: ArrayLike | None = None

    def _check(self) -> None:
        _check_schedule("schedule", self.schedule)
        if self.lo is not None:
            check_finite("lo", self.lo)
        if self.hi is not None:
            check_finite("hi", self.hi)
        if self.lo is not None and self.hi is not None and not self.lo <= self.hi:
            raise ValueError(f"lo must be <= hi, got lo={self.lo!r}, hi={self.hi!r}")

    def __call__(self, step: ArrayLike) -> Array:
        out = self.schedule(step)
        if self.lo is not None:
            out = jnp.maximum(out, as_float(self.lo))
        if self.hi is not None:
            out = jnp.minimum(out, as_float(self.hi))
        return out


@register("scale")
class scale(Schedule):
    """``schedule(t) * factor``; what ``schedule * factor`` builds."""

    schedule: Schedule
    factor: ArrayLike

    def _check(self) -> None:
        _check_schedule("schedule", self.schedule)
        check_finite("factor", self.factor)

    def __call__(self, step: ArrayLike) -> Array:
        return self.schedule(step) * as_float(self.factor)


@register("add")
class add(Schedule):
    """``a(t) + b(t)``; what ``a + b`` builds."""

    a: Schedule
    b: Schedule

    def _check(self) -> None:
        _check_schedule("a", self.a)
        _check_schedule("b", self.b)

    def __call__(self, step: ArrayLike) -> Array:
        return self.a(step) + self.b(step)


@register("product")
class product(Schedule):
    """``a(t) * b(t)``; what ``a * b`` builds for two schedules."""

    a: Schedule
    b: Schedule

    def _check(self) -> None:
        _check_schedule("a", self.a)
        _check_schedule("b", self.b)

    def __call__(self, step: ArrayLike) -> Array:
        return self.a(step) * self.b(step)
