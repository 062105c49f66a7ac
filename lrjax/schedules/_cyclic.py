"""Cyclical schedules: CLR (triangular, triangular2, exp_range) and one-cycle."""

from __future__ import annotations

import jax.numpy as jnp

from lrjax._checks import check_choice, check_finite, check_int, check_positive
from lrjax.schedules._base import (
    Array,
    ArrayLike,
    Schedule,
    as_float,
    as_int,
    int_floordiv,
    register,
    safe_div,
)
from lrjax.schedules._cosine import check_unit_interval, half_cosine

CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
ANNEALS = ("cos", "linear")
CONVENTIONS = ("fastai", "torch")


@register("cyclic", static=("mode",))
class cyclic(Schedule):
    """Cyclical learning rate (Smith 2017; torch ``CyclicLR``).

    A cycle is ``step_size_up`` steps rising from ``base_value`` to ``max_value``
    and ``step_size_down`` (default: ``step_size_up``) falling back. With cycle
    index ``c = t // (up + down)`` and position ``p = t - c * (up + down)``::

        x = p / up                 if p <= up, else (up + down - p) / down
        rate = base_value + (max_value - base_value) * x * scale

    where ``scale`` is 1 (``"triangular"``), ``2 ** -c`` (``"triangular2"``) or
    ``gamma ** t`` (``"exp_range"``). Cycle boundaries use exact integers.

    Example:
      >>> import lrjax
      >>> s = lrjax.cyclic(base_value=0.0, max_value=1.0, step_size_up=10)
      >>> [float(s(t)) for t in (0, 5, 10, 15, 20)]
      [0.0, 0.5, 1.0, 0.5, 0.0]
    """

    base_value: ArrayLike
    max_value: ArrayLike
    step_size_up: ArrayLike
    step_size_down: ArrayLike | None = None
    mode: str = "triangular"
    gamma: ArrayLike = 1.0

    def _check(self) -> None:
        check_finite("base_value", self.base_value)
        check_finite("max_value", self.max_value)
        check_int("step_size_up", self.step_size_up, minimum=1)
        if self.step_size_down is not None:
            check_int("step_size_down", self.step_size_down, minimum=1)
        check_choice("mode", self.mode, CYCLIC_MODES)
        check_positive("gamma", self.gamma)

    def _value(self, t: Array, tf: Array) -> Array:
        up = jnp.maximum(as_int(self.step_size_up), 1)
        down = up if self.step_size_down is None else jnp.maximum(as_int(self.step_size_down), 1)
        total = up + down
        t0 = jnp.maximum(t, 0)
        c = int_floordiv(t0, total)
        # Exact integer position, plus the fractional part of a float step.
        frac = jnp.where(tf < 0, 0.0, jnp.clip(tf - jnp.floor(tf), 0.0, 1.0))  # t < 0: step 0
        pos = as_float(t0 - c * total) + frac
        upf, downf = as_float(up), as_float(down)
        x = jnp.where(pos <= upf, pos / upf, (upf + downf - pos) / downf)
        if self.mode == "triangular":
            scale = 1.0
        elif self.mode == "triangular2":
            scale = 0.5 ** as_float(c)
        else:
            scale = as_float(self.gamma) ** jnp.maximum(tf, 0.0)
        base, peak = as_float(self.base_value), as_float(self.max_value)
        return base + (peak - base) * x * scale


def one_cycle_curve(
    tf: Array,
    total_steps: ArrayLike,
    pct_start: ArrayLike,
    start: Array,
    peak: Array,
    end: Array,
    *,
    three_phase: bool,
    anneal: str,
    convention: str,
) -> Array:
    """The one-cycle shape ``start -> peak -> end`` (three-phase: ``-> start -> end``).

    ``convention="fastai"`` places phase ends at ``pct_start * total_steps`` and
    ``total_steps`` (fastai's ``combine_scheds`` on ``pos = t / total_steps``);
    ``"torch"`` uses ``OneCycleLR``'s ends ``pct_start * total_steps - 1``,
    (``2 * pct_start * total_steps - 2``) and ``total_steps - 1``. Past the last
    end the final value holds (torch extrapolates the last phase one step further,
    to step ``total_steps``, and raises after that).
    """
    total = as_float(jnp.maximum(as_int(total_steps), 1))
    pct = as_float(pct_start)
    shift = 1.0 if convention == "torch" else 0.0
    if three_phase:
        ends = (pct * total - shift, 2.0 * pct * total - 2.0 * shift, total - shift)
        levels = (start, peak, start, end)
    else:
        ends = (pct * total - shift, total - shift)
        levels = (start, peak, end)

    def interp(lo: Array, hi: Array, frac: Array) -> Array:
        w = half_cosine(frac) if anneal == "cos" else 1.0 - frac
        return hi + (lo - hi) * w

    tf = jnp.maximum(tf, 0.0)
    out = levels[0] * jnp.ones_like(tf)
    begin = jnp.zeros_like(pct)
    for k, end_k in enumerate(ends):
        frac = jnp.clip(safe_div(tf - begin, end_k - begin), 0.0, 1.0)
        # Exactly 1 from the phase end on: under vmap XLA may divide as a multiply
        # by the reciprocal, which leaves a few ulps of the peak in the final value.
        frac = jnp.where(tf >= end_k, 1.0, frac)
        # torch's test is `step <= end`; at the shared end both phases agree.
        out = jnp.where(tf > begin if k else True, interp(levels[k], levels[k + 1], frac), out)
        begin = end_k
    return out


def _check_one_cycle(s: one_cycle | one_cycle_momentum) -> None:
    check_int("total_steps", s.total_steps, minimum=2 if s.convention == "torch" else 1)
    check_unit_interval("pct_start", s.pct_start)
    if s.three_phase and not s.pct_start < 0.5:
        raise ValueError(f"pct_start must be < 0.5 with three_phase=True, got {s.pct_start!r}")
    if not isinstance(s.three_phase, bool):
        raise TypeError(f"three_phase must be a bool, got {s.three_phase!r}")
    check_choice("anneal", s.anneal, ANNEALS)
    check_choice("convention", s.convention, CONVENTIONS)


@register("one_cycle", static=("three_phase", "anneal", "convention"))
class one_cycle(Schedule):
    """The one-cycle policy (Smith 2018; fastai ``fit_one_cycle``, torch ``OneCycleLR``).

    Warm up from ``max_value / div_factor`` to ``max_value`` over the first
    ``pct_start`` of ``total_steps``, then anneal (``"cos"`` or ``"linear"``) to the
    final value. With ``three_phase`` (torch), anneal back to the start value by
    ``2 * pct_start`` and then to the final value.

    - ``convention="fastai"`` (default): final value ``max_value / final_div_factor``
      (fastai's ``div_final``), phase ends at ``pct_start * total_steps`` and
      ``total_steps``.
    - ``convention="torch"``: final value ``max_value / (div_factor *
      final_div_factor)`` and torch's phase ends (``pct_start * total_steps - 1``,
      ``total_steps - 1``); equals ``OneCycleLR`` for the same arguments. Note
      torch's own defaults differ (``pct_start=0.3``, ``final_div_factor=1e4``).

    From the last phase end on (``total_steps``; ``total_steps - 1`` for
    ``"torch"``) the final value holds. torch defines ``OneCycleLR`` up to step
    ``total_steps - 1``: its step ``total_steps`` extrapolates the last phase and
    later steps raise.

    Example:
      >>> import lrjax
      >>> s = lrjax.one_cycle(max_value=1.0, total_steps=100)
      >>> [round(float(s(t)), 4) for t in (0, 25, 100)]
      [0.04, 1.0, 0.0]
    """

    max_value: ArrayLike
    total_steps: ArrayLike
    pct_start: ArrayLike = 0.25
    div_factor: ArrayLike = 25.0
    final_div_factor: ArrayLike = 1e5
    three_phase: bool = False
    anneal: str = "cos"
    convention: str = "fastai"

    def _check(self) -> None:
        check_finite("max_value", self.max_value)
        check_positive("div_factor", self.div_factor)
        check_positive("final_div_factor", self.final_div_factor)
        _check_one_cycle(self)

    def _value(self, t: Array, tf: Array) -> Array:
        peak = as_float(self.max_value)
        start = peak / as_float(self.div_factor)
        if self.convention == "torch":
            end = start / as_float(self.final_div_factor)
        else:
            end = peak / as_float(self.final_div_factor)
        return one_cycle_curve(
            tf,
            self.total_steps,
            self.pct_start,
            start,
            peak,
            end,
            three_phase=self.three_phase,
            anneal=self.anneal,
            convention=self.convention,
        )


@register("one_cycle_momentum", static=("three_phase", "anneal", "convention"))
class one_cycle_momentum(Schedule):
    """The momentum that goes with :class:`one_cycle`: high, down to base, back up.

    Falls from ``max_momentum`` to ``base_momentum`` while the rate warms up and
    rises back to ``max_momentum`` while it anneals (fastai ``moms=(0.95, 0.85,
    0.95)``, the momentum torch ``OneCycleLR`` sets). With ``three_phase`` the
    third phase holds ``max_momentum``. Use it for ``b1`` of Adam or the momentum
    of SGD via ``optax.inject_hyperparams``.

    Example:
      >>> import lrjax
      >>> m = lrjax.one_cycle_momentum(total_steps=100)
      >>> [round(float(m(t)), 4) for t in (0, 25, 100)]
      [0.95, 0.85, 0.95]
    """

    total_steps: ArrayLike
    base_momentum: ArrayLike = 0.85
    max_momentum: ArrayLike = 0.95
    pct_start: ArrayLike = 0.25
    three_phase: bool = False
    anneal: str = "cos"
    convention: str = "fastai"

    def _check(self) -> None:
        check_finite("base_momentum", self.base_momentum)
        check_finite("max_momentum", self.max_momentum)
        _check_one_cycle(self)

    def _value(self, t: Array, tf: Array) -> Array:
        lo, hi = as_float(self.base_momentum), as_float(self.max_momentum)
        return one_cycle_curve(
            tf,
            self.total_steps,
            self.pct_start,
            hi,
            lo,
            hi,
            three_phase=self.three_phase,
            anneal=self.anneal,
            convention=self.convention,
        )
