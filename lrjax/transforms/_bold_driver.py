"""The bold driver: grow the rate while the loss falls, cut it when it rises."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax._checks import check_number, float_dtype
from lrjax.transforms._monitor import scale_by_monitor


class BoldDriverState(NamedTuple):
    """State of :func:`bold_driver`; every field is a scalar array.

    Attributes:
      scale: the factor the updates are multiplied by (starts at 1.0).
      previous: the last finite checked value (NaN before the first check).
      num_checks: how many checks have run (one per ``accumulation_steps``
        updates).
      count: values accumulated towards the next check.
      accum: their sum.
    """

    scale: jax.Array
    previous: jax.Array
    num_checks: jax.Array
    count: jax.Array
    accum: jax.Array


def bold_driver(
    increase: float = 1.05,
    decrease: float = 0.5,
    *,
    min_scale: float = 0.0,
    max_scale: float = 10.0,
    accumulation_steps: int = 1,
) -> optax.GradientTransformationExtraArgs:
    """Scales the updates up while the loss falls and down when it rises.

    The "bold driver" heuristic (Vogl et al. 1988; Battiti 1989) as an Optax
    transform: chain it after an optimizer and pass the loss to ``update``
    (``tx.update(grads, state, params, value=loss)``). Every
    ``accumulation_steps`` updates one check compares the mean value ``v`` of
    those updates with the previous check's ``prev``:

    - first check: nothing to compare with; ``prev = v``, the scale stays.
      Likewise a finite ``v`` while no finite value has been checked yet
      (the first check was not finite) only becomes ``prev``.
    - ``v < prev``: ``scale = min(scale * increase, max_scale)``.
    - ``v > prev``, or ``v`` not finite (NaN, inf): ``scale = max(scale *
      decrease, min_scale)``.
    - ``v == prev``: the scale stays.
    - ``prev = v`` when ``v`` is finite (a NaN never becomes the reference).

    The update that completes a check is scaled by the new scale. Unlike the
    original heuristic the step that raised the loss is not undone. On noisy
    minibatch losses use ``accumulation_steps`` (e.g. one epoch) so that checks
    compare means rather than noise. Every numeric hyperparameter may be a JAX
    array or a tracer (vmap over settings, ``optax.inject_hyperparams``).

    Args:
      increase: growth factor while the loss falls, ``>= 1``.
      decrease: cut factor when it rises, in ``(0, 1]``.
      min_scale: lower bound of the scale, in ``[0, 1]``.
      max_scale: upper bound of the scale, ``>= 1`` (may be ``inf``).
      accumulation_steps: updates per check; the check sees their mean value.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is a
      :class:`BoldDriverState`.

    Raises:
      ValueError: an argument out of range, naming the parameter.

    Example:
      >>> import jax.numpy as jnp, optax, lrjax
      >>> tx = optax.chain(optax.sgd(0.1), lrjax.bold_driver(increase=1.1, decrease=0.5))
      >>> params = {"w": jnp.ones(2)}
      >>> state = tx.init(params)
      >>> for loss in [1.0, 0.8, 0.6, 0.9]:
      ...     updates, state = tx.update(params, state, params, value=loss)
      >>> round(float(lrjax.get_learning_rate(state, base_lr=0.1)), 6)   # 0.1 * 1.1**2 * 0.5
      0.0605
    """
    check_number("increase", increase, lambda x: x >= 1, ">= 1")
    check_number("decrease", decrease, lambda x: (x > 0) & (x <= 1), "in (0, 1]")
    check_number("max_scale", max_scale, lambda x: x >= 1, ">= 1", allow_inf=True)
    # Above 1, a cut from the starting scale would raise it.
    check_number("min_scale", min_scale, lambda x: (x >= 0) & (x <= 1), "in [0, 1]")
    check_number("accumulation_steps", accumulation_steps, lambda x: x >= 1, ">= 1", integer=True)

    def init_fn(params: Any = None) -> BoldDriverState:
        del params
        f = float_dtype()
        return BoldDriverState(
            scale=jnp.ones((), f),
            previous=jnp.full((), jnp.nan, f),
            num_checks=jnp.zeros((), jnp.int32),
            count=jnp.zeros((), jnp.int32),
            accum=jnp.zeros((), f),
        )

    def check(s: BoldDriverState, v: jax.Array) -> BoldDriverState:
        first = s.num_checks == 0
        finite = jnp.isfinite(v)
        grow = ~first & finite & (v < s.previous)
        cut = ~first & (~finite | (v > s.previous))
        up = jnp.minimum(s.scale * increase, max_scale).astype(s.scale.dtype)
        down = jnp.maximum(s.scale * decrease, min_scale).astype(s.scale.dtype)
        scale = jnp.where(grow, up, jnp.where(cut, down, s.scale))
        return s._replace(scale=scale, previous=jnp.where(finite, v, s.previous))

    return scale_by_monitor("bold_driver", BoldDriverState, init_fn, check, accumulation_steps)
