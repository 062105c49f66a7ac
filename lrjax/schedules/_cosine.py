"""Cosine family: cosine decay, SGDR warm restarts, flat-then-cosine."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lrjax._checks import check_finite, check_int, check_positive, int_dtype
from lrjax.schedules._base import (
    Array,
    ArrayLike,
    Schedule,
    as_float,
    as_int,
    int_floordiv,
    register,
)


def half_cosine(frac: Array) -> Array:
    """``(1 + cos(pi * frac)) / 2``: 1 at ``frac = 0``, 0 at ``frac = 1``."""
    return 0.5 * (1.0 + jnp.cos(jnp.pi * frac))


def check_unit_interval(name: str, value: ArrayLike) -> None:
    """Raises unless ``0 < value < 1``."""
    check_finite(name, value)
    if not 0 < value < 1:
        raise ValueError(f"{name} must be in the open interval (0, 1), got {value!r}")


@register("cosine")
class cosine(Schedule):
    """Cosine decay (optax ``cosine_decay_schedule``, keras ``CosineDecay``).

    With ``frac = min(t, steps) / steps``::

        rate(t) = end_value + (init_value - end_value) * ((1 + cos(pi * frac)) / 2) ** exponent

    ``end_value`` is absolute (Optax's and Keras' ``alpha`` is
    ``end_value / init_value``).

    Example:
      >>> import lrjax
      >>> s = lrjax.cosine(init_value=1.0, steps=100)
      >>> [round(float(s(t)), 4) for t in (0, 50, 100, 200)]
      [1.0, 0.5, 0.0, 0.0]
    """

    init_value: ArrayLike
    steps: ArrayLike
    end_value: ArrayLike = 0.0
    exponent: ArrayLike = 1.0

    def _check(self) -> None:
        check_finite("init_value", self.init_value)
        check_int("steps", self.steps, minimum=1)
        check_finite("end_value", self.end_value)
        check_positive("exponent", self.exponent)

    def _value(self, t: Array, tf: Array) -> Array:
        steps = as_float(jnp.maximum(as_int(self.steps), 1))
        frac = jnp.clip(tf, 0.0, steps) / steps
        init, end = as_float(self.init_value), as_float(self.end_value)
        return end + (init - end) * half_cosine(frac) ** as_float(self.exponent)


def restart_cycle(t: Array, period: Array, mult: Array) -> tuple[Array, Array, Array]:
    """Cycle index, start step and length of the SGDR cycle holding step ``t``.

    Cycle ``i`` has length ``period * mult**i``. Pure integer arithmetic (no
    logarithms), so restarts land on exactly the right step up to the largest
    int. For ``mult == 1`` this is ``t // period``; for ``mult >= 2`` there are at
    most as many cycles as bits in the int type, walked with saturating products.
    """
    t = jnp.maximum(t, 0)
    period = jnp.maximum(period, 1)
    mult = jnp.maximum(mult, 1)
    # mult == 1: plain periodic restarts.
    i_flat = int_floordiv(t, period)
    start_flat = i_flat * period
    # mult >= 2: walk the cycles; a cycle whose end is past t stops the walk.
    big = np.iinfo(int_dtype()).max
    i = jnp.zeros_like(t)
    start = jnp.zeros_like(t)
    length = jnp.broadcast_to(period, t.shape)
    for _ in range(np.iinfo(int_dtype()).bits):
        inside = (t - start) < length  # no overflow: start <= t
        start = jnp.where(inside, start, start + length)
        i = jnp.where(inside, i, i + 1)
        grown = jnp.where(length > big // mult, big, length * mult)
        length = jnp.where(inside, length, grown)
    flat = mult == 1
    return (
        jnp.where(flat, i_flat, i),
        jnp.where(flat, start_flat, start),
        jnp.where(flat, period, length),
    )


@register("cosine_restarts")
class cosine_restarts(Schedule):
    """SGDR: cosine annealing with warm restarts (torch ``CosineAnnealingWarmRestarts``).

    Cycle ``i`` lasts ``period * period_mult**i`` steps; at position ``p`` in it::

        rate = end_value + (init_value - end_value) * decay**i * (1 + cos(pi * p / T_i)) / 2

    torch's ``T_0, T_mult, eta_min`` are ``period, period_mult, end_value`` (with
    ``decay=1``); keras ``CosineDecayRestarts(first_decay_steps, t_mul, m_mul,
    alpha)`` is ``period, period_mult, decay, end_value = alpha * init_value``.
    ``period_mult`` is an integer (as in torch) so restarts are exact.

    Example:
      >>> import lrjax
      >>> s = lrjax.cosine_restarts(init_value=1.0, period=10, period_mult=2)
      >>> [round(float(s(t)), 4) for t in (0, 5, 10, 20, 30)]
      [1.0, 0.5, 1.0, 0.5, 1.0]
    """

    init_value: ArrayLike
    period: ArrayLike
    period_mult: ArrayLike = 1
    decay: ArrayLike = 1.0
    end_value: ArrayLike = 0.0

    def _check(self) -> None:
        check_finite("init_value", self.init_value)
        check_int("period", self.period, minimum=1)
        check_int("period_mult", self.period_mult, minimum=1)
        check_positive("decay", self.decay)
        check_finite("end_value", self.end_value)

    def _value(self, t: Array, tf: Array) -> Array:
        t, tf = jnp.maximum(t, 0), jnp.maximum(tf, 0.0)  # negative steps: the value at 0
        period, mult = as_int(self.period), as_int(self.period_mult)
        i, start, length = restart_cycle(t, period, mult)
        # Position from exact integers, plus the fractional part of a float step.
        pos = as_float(t - start) + jnp.clip(tf - jnp.floor(tf), 0.0, 1.0)
        # A cycle longer than the largest int (its length saturates in the walk)
        # still has its true length: period * mult**i, in floating point.
        saturated = length == np.iinfo(int_dtype()).max
        true_length = as_float(jnp.maximum(period, 1)) * as_float(mult) ** as_float(i)
        frac = pos / jnp.where(saturated, true_length, as_float(length))
        init, end = as_float(self.init_value), as_float(self.end_value)
        peak = (init - end) * as_float(self.decay) ** as_float(i)
        return end + peak * half_cosine(frac)


#: fastai's ``div_final`` for ``fit_flat_cos``.
FLAT_COS_DIV_FINAL = 1e5


@register("flat_cos")
class flat_cos(Schedule):
    """Flat, then cosine annealing (fastai ``fit_flat_cos``).

    With ``pos = t / total_steps``: ``init_value`` for ``pos < pct_start``, then a
    half cosine from ``init_value`` down to ``init_value / 1e5`` (fastai's
    ``div_final``) at ``pos = 1``; held there afterwards.

    Example:
      >>> import lrjax
      >>> s = lrjax.flat_cos(init_value=1.0, total_steps=100, pct_start=0.5)
      >>> [round(float(s(t)), 4) for t in (0, 50, 75)]
      [1.0, 1.0, 0.5]
    """

    init_value: ArrayLike
    total_steps: ArrayLike
    pct_start: ArrayLike = 0.75

    def _check(self) -> None:
        check_finite("init_value", self.init_value)
        check_int("total_steps", self.total_steps, minimum=1)
        check_unit_interval("pct_start", self.pct_start)

    def _value(self, t: Array, tf: Array) -> Array:
        total = as_float(jnp.maximum(as_int(self.total_steps), 1))
        pos = jnp.clip(tf / total, 0.0, 1.0)
        pct = as_float(self.pct_start)
        frac = jnp.clip((pos - pct) / (1.0 - pct), 0.0, 1.0)
        init = as_float(self.init_value)
        end = init / FLAT_COS_DIV_FINAL
        return end + (init - end) * half_cosine(frac)


__all__ = ["cosine", "cosine_restarts", "flat_cos", "half_cosine", "restart_cycle"]
