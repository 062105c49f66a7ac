"""Warmup-stable-decay (WSD, "trapezoidal") schedule."""

from __future__ import annotations

import jax.numpy as jnp

from lrjax._checks import check_choice, check_finite, check_int
from lrjax.schedules._base import (
    Array,
    ArrayLike,
    Schedule,
    as_float,
    as_int,
    register,
    step_offset,
)
from lrjax.schedules._cosine import half_cosine

DECAY_SHAPES = ("linear", "sqrt", "cosine")


def round_half_even(x: Array) -> Array:
    """Python's ``round`` on a product computed in floating point.

    ``decay_fraction * total_steps`` is an exact tie in float64 (``0.1 * 25 ==
    2.5``) but not in float32 (``2.5000000373``), so values within a few ulps of
    a half are treated as the tie Python would see, and rounded to even. A float64
    product just below a half (``0.35 * 90 == 31.499999999999996``) cannot be told
    from a tie in float32 and also rounds to even there. Under ``jax_enable_x64``
    the product is Python's own, so plain half-to-even rounding is exact.
    """
    if x.dtype == jnp.float64:
        return jnp.round(x)  # half to even, as Python's round
    lower = jnp.floor(x)
    tie = jnp.abs(x - (lower + 0.5)) <= 8 * jnp.finfo(x.dtype).eps * jnp.maximum(x, 1.0)
    even = jnp.where(jnp.mod(lower, 2) == 0, lower, lower + 1)
    return jnp.where(tie, even, jnp.round(x))


@register("wsd", static=("decay_shape",))
class wsd(Schedule):
    """Warmup-stable-decay (Hägele et al. 2024; the "trapezoidal" schedule).

    Linear warmup from 0 at step 0 to ``peak_value`` at ``warmup_steps``, hold,
    then decay over the last ``D = round(decay_fraction * total_steps)`` steps
    (Python's ``round``; in float32 a product a few ulps below a half, such as
    ``0.35 * 90 == 31.499999999999996``, is taken for the tie and rounds to even,
    while under ``jax_enable_x64`` it matches Python exactly).
    With ``z = (t - (total_steps - D)) / D``::

        linear: 1 - z     sqrt: 1 - sqrt(z)     cosine: (1 + cos(pi z)) / 2
        rate = end_value + (peak_value - end_value) * shape(z)

    ``end_value`` holds from ``total_steps`` on.

    Example:
      >>> import lrjax
      >>> s = lrjax.wsd(peak_value=1.0, total_steps=100, warmup_steps=10, decay_fraction=0.2)
      >>> [float(s(t)) for t in (0, 5, 50, 90, 100)]
      [0.0, 0.5, 1.0, 0.5, 0.0]
    """

    peak_value: ArrayLike
    total_steps: ArrayLike
    warmup_steps: ArrayLike = 0
    decay_fraction: ArrayLike = 0.1
    decay_shape: str = "linear"
    end_value: ArrayLike = 0.0

    def _check(self) -> None:
        check_finite("peak_value", self.peak_value)
        check_int("total_steps", self.total_steps, minimum=1)
        check_int("warmup_steps", self.warmup_steps, minimum=0)
        check_finite("decay_fraction", self.decay_fraction)
        if not 0 <= self.decay_fraction <= 1:
            raise ValueError(f"decay_fraction must be in [0, 1], got {self.decay_fraction!r}")
        check_choice("decay_shape", self.decay_shape, DECAY_SHAPES)
        check_finite("end_value", self.end_value)
        decay_steps = round(self.decay_fraction * self.total_steps)
        if self.warmup_steps + decay_steps > self.total_steps:
            raise ValueError(
                f"warmup_steps + round(decay_fraction * total_steps) must be <= total_steps, "
                f"got warmup_steps={self.warmup_steps!r}, decay steps={decay_steps}, "
                f"total_steps={self.total_steps!r}"
            )

    def _value(self, t: Array, tf: Array) -> Array:
        total_int = as_int(self.total_steps)
        total = as_float(total_int)
        decay_steps = round_half_even(as_float(self.decay_fraction) * total)
        # The decay's start and the step's place in it in integers: near 2**31 a
        # float32 step is a multiple of 128, coarser than a short decay.
        decay_start = total_int - as_int(decay_steps)
        w = as_float(as_int(self.warmup_steps))
        tf = jnp.maximum(tf, 0.0)
        peak, end = as_float(self.peak_value), as_float(self.end_value)
        warm = peak * tf / jnp.maximum(w, 1.0)
        into_decay = step_offset(t, tf, decay_start)
        z = jnp.clip(into_decay / jnp.maximum(decay_steps, 1.0), 0.0, 1.0)
        if self.decay_shape == "linear":
            shape = 1.0 - z
        elif self.decay_shape == "sqrt":
            shape = 1.0 - jnp.sqrt(z)
        else:
            shape = half_cosine(z)
        decayed = end + (peak - end) * shape
        # t is the floored step: tf >= total exactly when t >= total (an integer).
        return jnp.where(tf < w, warm, jnp.where(t >= total_int, end, decayed))
