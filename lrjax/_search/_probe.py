"""The cooldown probe: scores members between rounds as if annealed now.

Mid-schedule, a member's loss understates what a high rate reaches once it
decays (a short-horizon bias that makes PBT and halving greedy for low
rates). The probe continues each member from the end of the round (steps
``t0 + L .. t0 + L + K - 1`` of its schedule) on the round's last ``K``
batches, with its updates scaled down linearly towards zero
(:class:`CooledDown`), and scores the result as a round is scored. The
probe's parameters are then thrown away.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from lrjax._checks import float_dtype

#: Default cooldown probe: this fraction of a round's steps (see :func:`default_cooldown`).
COOLDOWN_FRACTION = 4


def default_cooldown(round_steps: int) -> int:
    """The default cooldown probe length: a quarter of a round (0 below 4 steps).

    Example:
      >>> default_cooldown(60), default_cooldown(3)
      (15, 0)
    """
    return round_steps // COOLDOWN_FRACTION


@dataclasses.dataclass(frozen=True)
class CooledDown:
    """``make_tx`` of the cooldown probe: ``h = (values, end)``; updates scaled by
    ``(end - step) / (steps + 1)``, clipped to ``[0, 1]``.

    Over the probe's steps ``end - steps .. end - 1`` the scale falls linearly
    from ``steps / (steps + 1)`` to ``1 / (steps + 1)``: the member's own
    optimizer and schedule, with its step size annealed towards zero (scaling
    an Optax update scales the rate, whatever the optimizer).
    """

    make_tx: Any
    steps: int

    def __call__(self, h: Any, step: Any) -> optax.GradientTransformation:
        values, end = h
        tx = self.make_tx(values, step)
        dtype = float_dtype()
        scale = jnp.clip((end - step).astype(dtype) / (self.steps + 1), 0, 1)

        def update(grads, state, params=None):
            updates, state = tx.update(grads, state, params)
            return jax.tree.map(lambda u: u * scale.astype(u.dtype), updates), state

        return optax.GradientTransformation(tx.init, update)


@dataclasses.dataclass(frozen=True)
class Shifted:
    """``batch_fn`` of the cooldown probe: the round's last batches again."""

    batch_fn: Any
    shift: int

    def __call__(self, t: Any) -> Any:
        return self.batch_fn(t - self.shift)


def probe_spec(kernel: Any, steps: int) -> Any:
    """The kernel spec of a probe of ``steps`` steps (one block of them, unless the
    kernel runs one step per block)."""
    return dataclasses.replace(
        kernel,
        make_tx=CooledDown(kernel.make_tx, steps),
        batch_fn=None if kernel.batch_fn is None else Shifted(kernel.batch_fn, steps),
        block=1 if kernel.unroll else steps,
        padded=False,
    )


def probe_inputs(hs: Any, keys: Any, t0: Any, round_steps: int, steps: int) -> tuple[Any, Any]:
    """``((hs, end), t0)`` of the probe after a round that started at step ``t0``:
    each copy's hyperparameters with the step its updates anneal towards."""
    end = jnp.full(keys.shape[1:2], t0 + round_steps + steps, jnp.int32)
    return (hs, end), t0 + round_steps
