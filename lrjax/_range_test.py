"""`lrjax.range_test`: check arguments, prepare inputs, run the engine, build a result."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from lrjax import _engine
from lrjax._checks import (
    check_choice,
    check_count,
    check_eval_every,
    check_lr_range,
    check_rate_optimizer,
    float_dtype,
)
from lrjax._lr_find import lr_find
from lrjax._results import RampResult, RangeTestResult

#: ``mode="sweep"`` is the classic ramp, now :func:`lrjax.lr_find` (deprecated here).
MODES = ("parallel", "sweep")


class ConstantRate(_engine.Static):
    """``make_tx`` of the range test: ``h`` is a copy's rate, ``optimizer(h)`` at
    every step (compared by the optimizer's structure: its code and closure)."""

    def __call__(self, h: Any, step: Any) -> optax.GradientTransformation:
        return self.fn(h)


def range_test(
    loss_fn: Callable[..., Any],
    params: Any,
    batches: Any,
    optimizer: Callable[[Any], optax.GradientTransformation] = optax.adam,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_lrs: int = 32,
    num_steps: int = 100,
    seeds: int = 1,
    init_fn: Callable[[jax.Array], Any] | None = None,
    mode: str = "parallel",
    diverge_factor: float | None = 4.0,
    chunk_size: int | str | None = None,
    mesh: Any = None,
    progress: bool | None = None,
    *,
    step_mode: str = "exp",
    state: Any = None,
    key: Any = None,
    val_batches: Any = None,
    eval_fn: Callable[..., Any] | None = None,
    eval_every: int | None = None,
    has_aux: bool = False,
    return_params: bool = False,
    strategy: str = "auto",
    trainable: Any = None,
) -> RangeTestResult | RampResult:
    """The learning-rate range test: many rates trained side by side.

    ``num_lrs`` log-spaced rates from ``min_lr`` to ``max_lr``, each trained with
    its constant rate for ``num_steps`` from the same start on the same batches,
    the copies vectorized or one after another (``strategy``). Each rate is
    scored: its validation loss after the last step with ``val_batches``, else
    its mean training loss over the last 10% of steps; ``best_lr`` scores best
    and ``suggest()`` is the rate to train with. Rates are data: another
    ``min_lr``/``max_lr`` compiles nothing. Models, randomness, data loaders,
    divergence, memory and devices: ``docs/api/range_test.md``, "The range test
    in detail". The classic single run along a ramp is :func:`lrjax.lr_find`.

    Args:
      loss_fn: ``(params, batch) -> scalar`` (``(model, batch)`` for NNX and Equinox).
      params: a pytree of float arrays, an ``nnx.Module``, a Linen ``(module, variables)``
        pair or an ``eqx.Module``; ``None`` with ``init_fn``.
      batches: arrays with a leading step axis, a callable ``step -> batch``, or an
        iterable of batches (a re-iterable is read again, epoch after epoch).
      optimizer: ``lr -> optax.GradientTransformation``, called with a traced rate.
      min_lr: the smallest rate, > 0 (fastai's ``start_lr``).
      max_lr: the largest rate, > ``min_lr``.
      num_lrs: the number of rates.
      num_steps: training steps per rate.
      seeds: initialisations per rate; ``> 1`` needs ``init_fn``.
      init_fn: ``key -> params``; seed ``i`` gets ``split(PRNGKey(0), seeds)[i]``.
      mode: ``"parallel"``; ``"sweep"`` is deprecated: call :func:`lrjax.lr_find`.
      diverge_factor: freeze a copy whose smoothed loss exceeds this x its best.
      chunk_size: rates per jitted call (``"auto"``: the most that fit in memory).
      mesh: a ``jax.sharding.Mesh`` or devices to shard the rates over.
      progress: ``None``: a bar (or lines) once a run takes 2 s; ``False``: none.
      step_mode: with ``mode="sweep"`` only (see :func:`lrjax.lr_find`).
      state: plain JAX: ``loss_fn(params, state, batch) -> (loss, new_state)``.
      key: the PRNG key of the copies' random streams (``PRNGKey(0)``).
      val_batches: evaluation batches (stacked, or an iterable read whole).
      eval_fn: the evaluation score (default: the loss).
      eval_every: also evaluate every this many steps (``result.val_curves``).
      has_aux: ``loss_fn`` returns ``(loss, aux)`` (``result.aux``).
      return_params: keep every copy's final parameters and model state.
      strategy: ``"auto"``, ``"scan"``, ``"blocks"`` or ``"sequential"``.
      trainable: the arrays to train, an NNX or Equinox filter (fine-tuning).

    Returns:
      A :class:`RangeTestResult` (``.best_lr``, ``.suggest()``, ``.plot()``, ...).

    Raises:
      ValueError: a bad value (``min_lr >= max_lr``, too few batches, a ragged
        batch, a loss that is not a scalar or ignores its parameters, ...).
      TypeError: a wrong type, e.g. an ``optimizer`` that is not callable.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> X = jax.random.normal(jax.random.PRNGKey(0), (20, 8, 3))
      >>> batches = (X, X @ jnp.array([1.0, -2.0, 0.5]))
      >>> loss_fn = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
      >>> result = lrjax.range_test(loss_fn, jnp.zeros(3), batches, optax.sgd,
      ...                           min_lr=1e-3, max_lr=10.0, num_lrs=8, num_steps=20)
      >>> result.losses.shape, bool(result.diverged[-1]), bool(result.diverged[0])
      ((1, 8, 20), True, False)
    """
    check_choice("mode", mode, MODES)
    if mode == "sweep":
        warnings.warn(
            'range_test(mode="sweep") is deprecated: call lrjax.lr_find(...) for the ramp',
            DeprecationWarning,
            stacklevel=2,
        )
        given = {
            "seeds": seeds != 1,
            "chunk_size": chunk_size is not None,
            "mesh": mesh is not None,
            "val_batches": val_batches is not None,
            "eval_every": eval_every is not None,
            "has_aux": has_aux is not False,
            "return_params": return_params is not False,
        }
        bad = [name for name, set_ in given.items() if set_]
        if bad:
            raise ValueError(f"{', '.join(bad)} apply to mode='parallel' only (one run on a ramp)")
        if params is None and callable(init_fn):  # as before: seed 0's initialisation
            params = init_fn(jax.random.split(jax.random.PRNGKey(0), 1)[0])
        return lr_find(
            loss_fn,
            params,
            batches,
            optimizer,
            min_lr=min_lr,
            max_lr=max_lr,
            num_steps=num_steps,
            step_mode=step_mode,
            diverge_factor=diverge_factor,
            progress=progress,
            state=state,
            key=key,
            strategy=strategy,
            trainable=trainable,
        )
    lo, hi = check_lr_range(min_lr, max_lr)
    num_lrs = check_count("num_lrs", num_lrs, minimum=1)
    num_steps = check_count("num_steps", num_steps, minimum=1)
    options = _engine.check_run_options(
        diverge_factor=diverge_factor, chunk_size=chunk_size, mesh=mesh, progress=progress,
        return_params=return_params, strategy=strategy,
    )  # fmt: skip
    check_rate_optimizer(optimizer)
    prepared = _engine.prepare(
        loss_fn,
        params,
        batches,
        seeds=seeds,
        init_fn=init_fn,
        state=state,
        eval_fn=eval_fn,
        has_aux=has_aux,
        val_batches=val_batches,
        key=key,
        trainable=trainable,
    )
    prepared.source.check_steps(num_steps)
    every = check_eval_every(eval_every, num_steps, prepared.val is not None)
    lrs = np.geomspace(lo, hi, num_lrs)
    out = _engine.run(
        prepared,
        ConstantRate(optimizer),
        lrs.astype(float_dtype()),
        num_steps=num_steps,
        options=options,
        eval_every=every,
        description=f"range test: {num_lrs} rates x {num_steps} steps",
    )
    return RangeTestResult.from_engine(lrs, out, options.diverge_factor, every)
