"""Monotone decays: exponential, linear, polynomial, inverse-time, inverse-sqrt, REX."""

from __future__ import annotations

import jax.numpy as jnp

from lrjax._checks import check_finite, check_int, check_positive
from lrjax.schedules._base import (
    Array,
    ArrayLike,
    Schedule,
    as_float,
    as_int,
    int_floordiv,
    register,
    step_offset,
)


@register("exponential", static=("staircase",))
class exponential(Schedule):
    """Exponential decay (keras ``ExponentialDecay``, optax ``exponential_decay``).

    With ``c = t - transition_begin``::

        p = c / decay_steps            (floor(c / decay_steps) if staircase)
        rate(t) = init_value * decay_rate ** p     for c > 0, init_value before

    ``end_value`` (optional) bounds the result: a floor when ``decay_rate < 1``, a
    ceiling when it is > 1, as in Optax. torch ``ExponentialLR(gamma)`` is
    ``exponential(init_value, decay_rate=gamma)``.

    Example:
      >>> import lrjax
      >>> s = lrjax.exponential(init_value=1.0, decay_rate=0.5, decay_steps=10)
      >>> float(s(20))
      0.25
    """

    init_value: ArrayLike
    decay_rate: ArrayLike
    decay_steps: ArrayLike = 1
    staircase: bool = False
    transition_begin: ArrayLike = 0
    end_value: ArrayLike | None = None

    def _check(self) -> None:
        check_finite("init_value", self.init_value)
        check_positive("decay_rate", self.decay_rate)
        check_int("decay_steps", self.decay_steps, minimum=1)
        check_int("transition_begin", self.transition_begin, minimum=0)
        if not isinstance(self.staircase, bool):
            raise TypeError(f"staircase must be a bool, got {self.staircase!r}")
        if self.end_value is not None:
            check_finite("end_value", self.end_value)

    def _value(self, t: Array, tf: Array) -> Array:
        begin = as_int(self.transition_begin)
        steps = as_int(self.decay_steps)
        if self.staircase:
            p = as_float(int_floordiv(jnp.maximum(t - begin, 0), steps))
        else:
            p = step_offset(t, tf, begin) / as_float(steps)
        init = as_float(self.init_value)
        rate = as_float(self.decay_rate)
        out = init * rate**p
        if self.end_value is not None:
            end = as_float(self.end_value)
            out = jnp.where(rate < 1, jnp.maximum(out, end), jnp.minimum(out, end))
        return out


@register("linear")
class linear(Schedule):
    """Linear interpolation from ``init_value`` to ``end_value`` (optax ``linear_schedule``).

    ``rate(t) = init_value + (end_value - init_value) * clip((t - transition_begin) / steps, 0, 1)``

    Example:
      >>> import lrjax
      >>> s = lrjax.linear(init_value=1.0, end_value=0.0, steps=10)
      >>> [float(s(t)) for t in (0, 5, 10, 20)]
      [1.0, 0.5, 0.0, 0.0]
    """

    init_value: ArrayLike
    end_value: ArrayLike
    steps: ArrayLike
    transition_begin: ArrayLike = 0

    def _check(self) -> None:
        check_finite("init_value", self.init_value)
        check_finite("end_value", self.end_value)
        check_int("steps", self.steps, minimum=1)
        check_int("transition_begin", self.transition_begin, minimum=0)

    def _value(self, t: Array, tf: Array) -> Array:
        steps = as_float(as_int(self.steps))
        frac = jnp.clip(step_offset(t, tf, self.transition_begin) / steps, 0.0, 1.0)
        init, end = as_float(self.init_value), as_float(self.end_value)
        return init + (end - init) * frac


@register("polynomial", static=("cycle",))
class polynomial(Schedule):
    """Polynomial decay (keras ``PolynomialDecay``, torch ``PolynomialLR``).

    ``rate(t) = (init_value - end_value) * (1 - min(t, steps) / steps) ** power + end_value``

    With ``cycle=True`` (keras), the horizon grows to the next multiple of ``steps``
    past ``t`` instead: ``steps * ceil(t / steps)`` (``steps`` at ``t = 0``).
    torch ``PolynomialLR(total_iters, power)`` is ``end_value=0``.

    Example:
      >>> import lrjax
      >>> s = lrjax.polynomial(init_value=1.0, end_value=0.0, steps=10, power=2.0)
      >>> float(s(5))
      0.25
    """

    init_value: ArrayLike
    end_value: ArrayLike
    steps: ArrayLike
    power: ArrayLike = 1.0
    cycle: bool = False

    def _check(self) -> None:
        check_finite("init_value", self.init_value)
        check_finite("end_value", self.end_value)
        check_int("steps", self.steps, minimum=1)
        check_positive("power", self.power)
        if not isinstance(self.cycle, bool):
            raise TypeError(f"cycle must be a bool, got {self.cycle!r}")

    def _value(self, t: Array, tf: Array) -> Array:
        steps = jnp.maximum(as_int(self.steps), 1)
        tf = jnp.maximum(tf, 0.0)
        if self.cycle:
            # ceil(step / steps) with integers (the integer ceiling of a fractional
            # step first); 1 at t = 0 (keras).
            # (`(tc + steps - 1) // steps` would overflow near the largest int.)
            tc = jnp.maximum(t, 0) + (tf > jnp.floor(tf)).astype(t.dtype)
            q = int_floordiv(tc, steps)
            mult = jnp.maximum(q + (q * steps < tc).astype(q.dtype), 1)
            horizon = as_float(steps) * as_float(mult)
        else:
            horizon = as_float(steps)
            tf = jnp.minimum(tf, horizon)
        # `(horizon - t) / horizon`, not `1 - t / horizon`: the numerator is exact, so
        # there is no cancellation near the end, and it never dips below 0 (under jit
        # XLA computes `t / k` as `t * (1 / k)`, which can exceed 1 at `t = k`, and a
        # negative base to a fractional power is NaN).
        rest = jnp.maximum(horizon - tf, 0.0) / horizon
        init, end = as_float(self.init_value), as_float(self.end_value)
        return (init - end) * rest ** as_float(self.power) + end


@register("inverse_time", static=("staircase",))
class inverse_time(Schedule):
    """Inverse-time decay (keras ``InverseTimeDecay``, Keras' old ``decay=`` argument).

    ``rate(t) = init_value / (1 + decay_rate * t / decay_steps)``, with
    ``floor(t / decay_steps)`` when ``staircase``.

    Example:
      >>> import lrjax
      >>> s = lrjax.inverse_time(init_value=1.0, decay_rate=1.0, decay_steps=10)
      >>> float(s(10))
      0.5
    """

    init_value: ArrayLike
    decay_rate: ArrayLike
    decay_steps: ArrayLike = 1
    staircase: bool = False

    def _check(self) -> None:
        check_finite("init_value", self.init_value)
        check_positive("decay_rate", self.decay_rate, strict=False)
        check_int("decay_steps", self.decay_steps, minimum=1)
        if not isinstance(self.staircase, bool):
            raise TypeError(f"staircase must be a bool, got {self.staircase!r}")

    def _value(self, t: Array, tf: Array) -> Array:
        steps = as_int(self.decay_steps)
        if self.staircase:
            p = as_float(int_floordiv(jnp.maximum(t, 0), steps))
        else:
            p = jnp.maximum(tf, 0.0) / as_float(steps)
        return as_float(self.init_value) / (1.0 + as_float(self.decay_rate) * p)


@register("inverse_sqrt")
class inverse_sqrt(Schedule):
    """The Transformer ("Noam") schedule: linear warmup, then ``1/sqrt(t)`` decay.

    ``rate(t) = peak_value * t / warmup_steps`` for ``t < warmup_steps``, then
    ``peak_value * sqrt(warmup_steps / t)``; the peak is reached at
    ``t = warmup_steps``. (Vaswani et al. write it as
    ``d_model**-0.5 * min(t**-0.5, t * w**-1.5)``, which is this with
    ``peak_value = (d_model * w) ** -0.5``.)

    Example:
      >>> import lrjax
      >>> s = lrjax.inverse_sqrt(peak_value=1.0, warmup_steps=100)
      >>> [float(s(t)) for t in (50, 100, 400)]
      [0.5, 1.0, 0.5]
    """

    peak_value: ArrayLike
    warmup_steps: ArrayLike

    def _check(self) -> None:
        check_finite("peak_value", self.peak_value)
        check_int("warmup_steps", self.warmup_steps, minimum=1)

    def _value(self, t: Array, tf: Array) -> Array:
        w = as_float(jnp.maximum(as_int(self.warmup_steps), 1))
        tf = jnp.maximum(tf, 0.0)
        peak = as_float(self.peak_value)
        warm = peak * tf / w
        decay = peak * jnp.sqrt(w / jnp.maximum(tf, w))
        return jnp.where(tf < w, warm, decay)


@register("rex")
class rex(Schedule):
    """REX ("reflected exponential") decay of Chen et al. (2022).

    With ``z = min(t, steps) / steps``:
    ``rate(t) = end_value + (init_value - end_value) * (1 - z) / (1/2 + (1 - z) / 2)``.
    It stays high longer than linear decay and drops to ``end_value`` at ``steps``.

    Example:
      >>> import lrjax
      >>> s = lrjax.rex(init_value=1.0, steps=100)
      >>> round(float(s(50)), 4)
      0.6667
    """

    init_value: ArrayLike
    steps: ArrayLike
    end_value: ArrayLike = 0.0

    def _check(self) -> None:
        check_finite("init_value", self.init_value)
        check_int("steps", self.steps, minimum=1)
        check_finite("end_value", self.end_value)

    def _value(self, t: Array, tf: Array) -> Array:
        steps = as_float(jnp.maximum(as_int(self.steps), 1))
        # 1 - z as `(steps - t) / steps`: exact numerator, never below 0 (see polynomial).
        rest = (steps - jnp.clip(tf, 0.0, steps)) / steps
        factor = rest / (0.5 + 0.5 * rest)
        init, end = as_float(self.init_value), as_float(self.end_value)
        return end + (init - end) * factor
