"""Reduce the rate when a monitored value stops improving (torch ``ReduceLROnPlateau``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax._checks import (
    check_choice,
    check_number,
    float_dtype,
    python_one_minus,
)
from lrjax.transforms._monitor import scale_by_monitor


class ReduceOnPlateauState(NamedTuple):
    """State of :func:`reduce_on_plateau`; every field is a scalar array.

    Attributes:
      scale: the factor the updates are multiplied by (1.0 until the first
        reduction); the rate in force is the optimizer's rate times ``scale``.
      best: the best checked value so far (``inf`` in ``"min"`` mode, ``-inf``
        in ``"max"`` mode before the first check); torch's ``best``.
      num_bad: consecutive checks without improvement; torch's
        ``num_bad_epochs`` (reset during cooldown and after a reduction).
      cooldown_counter: checks left in the cooldown; torch's ``cooldown_counter``.
      num_good: consecutive improving checks outside cooldown, for the
        increase-again rule (always 0 without ``increase_factor``).
      reduced: whether a reduction has ever been applied (bool).
      num_checks: how many checks have run (one per ``accumulation_steps``
        updates).
      count: values accumulated towards the next check (``< accumulation_steps``).
      accum: their sum.
    """

    scale: jax.Array
    best: jax.Array
    num_bad: jax.Array
    cooldown_counter: jax.Array
    num_good: jax.Array
    reduced: jax.Array
    num_checks: jax.Array
    count: jax.Array
    accum: jax.Array


def reduce_on_plateau(
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    mode: str = "min",
    cooldown: int = 0,
    min_scale: float = 0.0,
    accumulation_steps: int = 1,
    increase_factor: float | None = None,
    increase_patience: int | None = None,
    *,
    max_scale: float = 1.0,
    eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    """Scales the updates down when the monitored value stops improving.

    PyTorch's ``ReduceLROnPlateau`` as an Optax transform: chain it after an
    optimizer and pass the monitored value (the loss) to ``update``::

        tx.update(grads, state, params, value=loss)

    Each call adds ``value`` to a running sum; every ``accumulation_steps``
    calls, one *check* runs on the mean of those values, as torch's
    ``scheduler.step(mean)`` would (exactly so while the best value is not
    negative; see the relative rule below):

    - ``better = value < best - threshold * |best|`` (``mode="min"``, ``"rel"``),
      ``value < best - threshold`` (``"abs"``),
      ``value > best + threshold * |best|`` (``mode="max"``, ``"rel"``),
      ``value > best + threshold`` (``"abs"``); NaN is never better. For
      ``best >= 0`` the relative rule is torch's ``best * (1 - threshold)``
      (``best * (1 + threshold)`` in ``"max"``) exactly. For a negative ``best``
      it deliberately differs from torch: torch's ``best * (1 - threshold)``
      then lies *above* ``best``, so a flat negative loss counts as an
      improvement at every check and the rate is never reduced (pytorch#38622,
      pytorch#47513; Optax's ``contrib.reduce_on_plateau`` has the same flaw,
      optax PR 1767). Here the margin is always ``threshold * |best|`` on the
      side of improvement.
    - ``better``: ``best = value``, ``num_bad = 0``; else ``num_bad += 1``.
    - in cooldown (``cooldown_counter > 0``): ``cooldown_counter -= 1`` and
      ``num_bad = 0``.
    - if ``num_bad > patience``: ``new = max(scale * factor, min_scale)``, applied
      only if ``scale - new > eps``; then ``cooldown_counter = cooldown`` and
      ``num_bad = 0``. So the rate drops on the ``patience + 1``-th bad check.

    The update of the call that completes a check is already scaled by the
    scale that check decided (the rate torch uses after ``scheduler.step``).
    ``min_scale`` and ``eps`` are relative to the optimizer's rate: torch's
    ``min_lr`` is ``min_scale * lr`` and its ``eps`` is ``eps * lr``.

    **Increase again** (optional): with ``increase_factor`` set, once a
    reduction has happened, ``increase_patience`` consecutive improving checks
    (outside cooldown; a check in cooldown breaks the run) multiply the scale
    by ``increase_factor``, capped at ``max_scale`` (1.0: back to the
    optimizer's rate at most; an increase never lowers a scale already above
    ``max_scale``), and the count starts again.

    **Host-side use**: the same object is a pure state machine for a loop that
    checks once per epoch: ``state = tx.init()`` then
    ``state = tx.update(state, val_loss)`` (or ``tx.update(state, value=...)``)
    returns the next state, and ``state.scale`` is the factor to use.

    Every numeric hyperparameter may be a JAX array or a tracer: build the
    transform inside ``jax.vmap`` to run several settings side by side, or wrap
    it in ``optax.inject_hyperparams``.

    Args:
      factor: multiplies the scale at a reduction, in ``[0, 1)``.
      patience: bad checks tolerated before a reduction, an integer ``>= 0``.
      threshold: how much better a value must be to count as an improvement.
        It is applied in the state's float dtype: in float32 a relative
        threshold below about 1e-7 acts as 0 (torch computes in float64).
      threshold_mode: ``"rel"`` or ``"abs"``.
      mode: ``"min"`` (lower is better) or ``"max"``.
      cooldown: checks after a reduction during which bad checks are ignored.
      min_scale: the scale never drops below this (torch's ``min_lr / lr``).
      accumulation_steps: updates per check; the check sees their mean value.
      increase_factor: if set (``> 1``), raise the scale again after
        improvements, as described above.
      increase_patience: consecutive improving checks before an increase;
        defaults to ``patience + 1``. Only with ``increase_factor``.
      max_scale: the cap of the increase-again rule (may be ``inf``).
      eps: a reduction smaller than this (in scale) is skipped, as torch's ``eps``.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a
      :class:`ReduceOnPlateauState`.

    Raises:
      ValueError: an argument out of range, naming the parameter.

    Example:
      >>> import jax.numpy as jnp, optax, lrjax
      >>> tx = optax.chain(optax.sgd(0.1), lrjax.reduce_on_plateau(factor=0.5, patience=1))
      >>> params = {"w": jnp.ones(2)}
      >>> state = tx.init(params)
      >>> for loss in [1.0, 0.9, 0.95, 0.95, 0.95]:
      ...     updates, state = tx.update(params, state, params, value=loss)
      >>> round(float(lrjax.get_learning_rate(state, base_lr=0.1)), 6)
      0.05
      >>> plateau = lrjax.reduce_on_plateau(patience=0)   # host-side, per epoch
      >>> s = plateau.init()
      >>> for val_loss in [1.0, 1.2]:
      ...     s = plateau.update(s, val_loss)
      >>> round(float(s.scale), 6)
      0.1
    """
    check_choice("mode", mode, ("min", "max"))
    check_choice("threshold_mode", threshold_mode, ("rel", "abs"))
    check_number("factor", factor, lambda x: (x >= 0) & (x < 1), "in [0, 1)")
    check_number("patience", patience, lambda x: x >= 0, ">= 0", integer=True)
    check_number("threshold", threshold, lambda x: x >= 0, ">= 0")
    check_number("cooldown", cooldown, lambda x: x >= 0, ">= 0", integer=True)
    check_number("min_scale", min_scale, lambda x: x >= 0, ">= 0")
    check_number("accumulation_steps", accumulation_steps, lambda x: x >= 1, ">= 1", integer=True)
    check_number("max_scale", max_scale, lambda x: x > 0, "> 0", allow_inf=True)
    check_number("eps", eps, lambda x: x >= 0, ">= 0")
    increase = increase_factor is not None
    if increase:
        check_number("increase_factor", increase_factor, lambda x: x > 1, "> 1")
        if increase_patience is None:
            increase_patience = patience + 1
        check_number("increase_patience", increase_patience, lambda x: x >= 1, ">= 1", integer=True)
    elif increase_patience is not None:
        raise ValueError(
            f"increase_patience={increase_patience!r} has no effect without increase_factor"
        )

    if threshold_mode == "rel":
        # The margin is threshold * |best|: best * (1 -/+ threshold) on either side
        # of zero. Each factor is computed in float64 when it can be, as torch does,
        # so that for best >= 0 the reference is torch's, bit for bit.
        shrink, grow = python_one_minus(threshold), 1 + threshold
        toward_pos, toward_neg = (shrink, grow) if mode == "min" else (grow, shrink)

    def is_better(a: jax.Array, best: jax.Array) -> jax.Array:
        if threshold_mode == "rel":
            pos = best * jnp.asarray(toward_pos, best.dtype)
            # -inf (max mode's start) stays -inf: -inf * (1 - threshold) is NaN or
            # +inf for threshold >= 1, and nothing would ever be better.
            neg = jnp.where(jnp.isinf(best), best, best * jnp.asarray(toward_neg, best.dtype))
            ref = jnp.where(best >= 0, pos, neg)
        else:
            ref = best - threshold if mode == "min" else best + threshold
        return a < ref if mode == "min" else a > ref

    def init_fn(params: Any = None) -> ReduceOnPlateauState:
        del params
        f = float_dtype()
        i = jnp.int32
        worst = jnp.inf if mode == "min" else -jnp.inf
        return ReduceOnPlateauState(
            scale=jnp.ones((), f),
            best=jnp.asarray(worst, f),
            num_bad=jnp.zeros((), i),
            cooldown_counter=jnp.zeros((), i),
            num_good=jnp.zeros((), i),
            reduced=jnp.zeros((), jnp.bool_),
            num_checks=jnp.zeros((), i),
            count=jnp.zeros((), i),
            accum=jnp.zeros((), f),
        )

    def check(s: ReduceOnPlateauState, current: jax.Array) -> ReduceOnPlateauState:
        better = is_better(current, s.best)
        best = jnp.where(better, current, s.best)
        num_bad = jnp.where(better, 0, s.num_bad + 1)
        in_cooldown = s.cooldown_counter > 0
        cooldown_counter = jnp.where(in_cooldown, s.cooldown_counter - 1, s.cooldown_counter)
        num_bad = jnp.where(in_cooldown, 0, num_bad)
        reduce = num_bad > patience
        target = jnp.maximum(s.scale * factor, min_scale).astype(s.scale.dtype)
        apply = reduce & (s.scale - target > eps)
        scale = jnp.where(apply, target, s.scale)
        cooldown_counter = jnp.where(reduce, cooldown, cooldown_counter)
        num_bad = jnp.where(reduce, 0, num_bad)
        reduced = s.reduced | apply
        num_good = s.num_good
        if increase:
            num_good = jnp.where(better & ~in_cooldown & ~reduce, s.num_good + 1, 0)
            grow = reduced & (num_good >= increase_patience)
            raised = jnp.minimum(scale * increase_factor, max_scale).astype(scale.dtype)
            scale = jnp.where(grow, jnp.maximum(scale, raised), scale)
            num_good = jnp.where(grow, 0, num_good)
        i = jnp.int32
        return s._replace(
            scale=scale,
            best=best,
            num_bad=num_bad.astype(i),
            cooldown_counter=cooldown_counter.astype(i),
            num_good=num_good.astype(i),
            reduced=reduced,
        )

    return scale_by_monitor(
        "reduce_on_plateau", ReduceOnPlateauState, init_fn, check, accumulation_steps
    )
