"""`lrjax.lr_find`: the classic range test, one run along a ramp of rates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optax

from lrjax import _engine
from lrjax._checks import (
    check_choice,
    check_count,
    check_lr_range,
    check_rate_optimizer,
    float_dtype,
)
from lrjax._results import STEP_MODES, RampResult, ramp


class RampRate(_engine.Static):
    """``make_tx`` of the ramp: ``h`` is the ``[num_steps]`` array of rates,
    ``optimizer(h[step])``."""

    def __call__(self, h: Any, step: Any) -> optax.GradientTransformation:
        return self.fn(h[step])


def lr_find(
    loss_fn: Callable[..., Any],
    params: Any,
    batches: Any,
    optimizer: Callable[[Any], optax.GradientTransformation] = optax.adam,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    step_mode: str = "exp",
    diverge_factor: float | None = 4.0,
    progress: bool | None = None,
    state: Any = None,
    key: Any = None,
    strategy: str = "auto",
    trainable: Any = None,
) -> RampResult:
    """The classic learning-rate range test: one run with the rate ramped up.

    fastai's ``lr_find`` and torch-lr-finder: the rate at step ``t`` is
    ``min_lr * (max_lr / min_lr) ** (t / (num_steps - 1))`` (``step_mode="exp"``)
    or linear between the two (``"linear"``); the run stops when the loss
    diverges (a non-finite loss, or the debiased EMA-smoothed loss, beta 0.98,
    above ``diverge_factor`` x its best). The result's suggestions read the
    smoothed curve as fastai's do (``"valley"`` by default; ``"minimum"``,
    ``"steep"``, ``"slide"``).

    One run's answer depends on the order of its batches and on the smoothing
    lag; :func:`lrjax.range_test` trains every rate from the same start
    instead. Models, data, ``state`` and ``key`` are as there.

    Args:
      loss_fn: ``(params, batch) -> scalar`` (see :func:`lrjax.range_test`).
      params: initial parameters, an ``nnx.Module`` or a Linen
        ``(module, variables)`` pair.
      batches: a pytree with a leading step axis, a callable ``step -> batch``
        or an iterable of batches.
      optimizer: ``lr -> optax.GradientTransformation``.
      min_lr: the first rate, > 0.
      max_lr: the last rate, > ``min_lr``.
      num_steps: steps of the ramp.
      step_mode: ``"exp"`` (default) or ``"linear"``.
      diverge_factor: the divergence threshold (> 1); ``None``: stop only on
        a non-finite loss.
      progress: as in ``range_test`` (``False``: no report on stderr).
      state: plain JAX with state (``loss_fn(params, state, batch) -> (loss,
        new_state)``).
      key: the PRNG key of the run's random streams (``PRNGKey(0)``).
      strategy: ``"auto"``, ``"scan"``, ``"blocks"`` or ``"sequential"`` (see
        :func:`lrjax.range_test`).
      trainable: the arrays to train, an NNX or Equinox filter; the rest is carried
        unchanged (fine-tuning: ``docs/frameworks.md``).

    Returns:
      A :class:`RampResult`.

    Raises:
      ValueError: a bad value (``min_lr >= max_lr``, too few batches, ...).
      TypeError: a wrong type, e.g. an ``optimizer`` that is not callable.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> X = jax.random.normal(jax.random.PRNGKey(0), (100, 8, 3))
      >>> batches = (X, X @ jnp.array([1.0, -2.0, 0.5]))
      >>> loss_fn = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
      >>> ramp = lrjax.lr_find(loss_fn, jnp.zeros(3), batches, optax.sgd,
      ...                      min_lr=1e-4, max_lr=10.0, num_steps=100)
      >>> ramp.stop_step > 0, ramp.lrs.shape
      (True, (100,))
      >>> lr = ramp.suggest()  # fastai's valley
    """
    lo, hi = check_lr_range(min_lr, max_lr)
    num_steps = check_count("num_steps", num_steps, minimum=1)
    check_choice("step_mode", step_mode, STEP_MODES)
    options = _engine.check_run_options(
        diverge_factor=diverge_factor, progress=progress, strategy=strategy
    )
    check_rate_optimizer(optimizer)
    prepared = _engine.prepare(loss_fn, params, batches, state=state, key=key, trainable=trainable)
    prepared.source.check_steps(num_steps)
    lrs = ramp(lo, hi, num_steps, step_mode)
    out = _engine.run(
        prepared,
        RampRate(optimizer),
        lrs.astype(float_dtype())[None],
        num_steps=num_steps,
        options=options,
        description=f"lr_find: {num_steps} steps",
    )
    return RampResult.from_curves(
        lrs,
        out.losses[0, 0],
        out.smoothed[0, 0],
        int(out.stop_step[0, 0]),
        options.diverge_factor,
        step_mode,
        data_passes=out.data_passes,
    )
