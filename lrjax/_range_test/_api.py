"""`lrjax.range_test`: check arguments, prepare inputs, run the engine, build a result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from lrjax import _train
from lrjax._range_test._ramp import STEP_MODES, ramp
from lrjax._range_test._result import MODES, RampResult, RangeTestResult
from lrjax._validation import (
    check_bool,
    check_choice,
    check_int,
    check_optional_bool,
    check_positive_float,
    float_dtype,
)

PARALLEL_ONLY = (
    "seeds",
    "chunk_size",
    "mesh",
    "val_batches",
    "eval_every",
    "has_aux",
    "return_params",
)


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
) -> RangeTestResult | RampResult:
    """The learning-rate range test: many rates trained side by side with ``jax.vmap``.

    **parallel** (default): ``num_lrs`` log-spaced rates from ``min_lr`` to
    ``max_lr``; each copy trains with its constant rate for ``num_steps`` from
    the same initial parameters on the same batches, all in one
    ``jax.jit(jax.vmap(lax.scan(...)))``. Rates are data, not constants: a
    second call with other ``min_lr``/``max_lr`` (same ``num_lrs``, functions
    and shapes) reuses the compilation. Each rate is scored by its mean loss
    over the last 10% of steps; suggestions act on that score curve.

    **sweep**: the classic single run (fastai ``lr_find``, torch-lr-finder), the
    rate ramped over ``num_steps`` from ``min_lr`` to ``max_lr``
    (``step_mode="exp"`` or ``"linear"``), stopped on divergence, as one jitted
    scan; suggestions act on the smoothed curve exactly as fastai's do.

    Divergence: every copy keeps a debiased EMA of its loss (beta 0.98). A copy
    whose loss is non-finite, or whose smoothed loss exceeds ``diverge_factor``
    x its best smoothed loss (for a negative best: rises by more than
    ``(diverge_factor - 1) * |best|``), is frozen from that step: its
    parameters stop changing, its later losses are NaN and it is marked
    diverged. Copies never interact: the other copies' numbers are bit for bit
    those of a run where the bad copy had any other rate, and of a run without
    it at the same ``chunk_size`` (same shapes per jitted call); a run with
    another number of copies per call can differ in the last bit, because XLA
    may pick other kernels for another batch size. On a GPU, JAX's default
    float32 matmuls are TF32, and a batched matmul may round differently from
    a single one: parallel and one-at-a-time runs then agree to about 1e-3;
    ``jax.config.update("jax_default_matmul_precision", "highest")`` brings
    that back to float32 rounding (measured on an H200).

    Memory and devices: ``chunk_size`` evaluates the rates in jitted chunks of
    that many (one compilation; the last chunk is padded), bounding memory by
    the chunk. ``mesh`` (a ``jax.sharding.Mesh`` or a list of devices) shards
    the rate axis over its devices (all mesh axes, flattened); results equal a
    one-device run. Multi-host: call ``jax.distributed.initialize()`` in every
    process, build a mesh over ``jax.devices()`` (all hosts), and call
    ``range_test`` with identical arguments in every process (as in any SPMD
    JAX program); each process gets the full result. ``KeyboardInterrupt``
    during a chunked run returns the chunks already finished (with a warning).

    Args:
      loss_fn: ``(params, batch) -> scalar`` loss. With Flax, pass the model as
        ``params`` and a ``loss_fn(model, batch)`` (NNX module) or
        ``loss_fn(apply, batch)`` (a ``(linen_module, variables)`` pair); see
        :func:`from_nnx` / :func:`from_linen`.
      params: initial parameters (a pytree of float arrays). May be ``None``
        when ``init_fn`` is given.
      batches: a pytree of arrays with a leading step axis (at least
        ``num_steps`` long), or a callable ``step -> batch`` traced inside the
        scan (``step`` is an int32 scalar).
      optimizer: ``lr -> optax.GradientTransformation`` (``optax.adam``,
        ``optax.sgd``, ``lambda lr: optax.sgd(lr, momentum=0.9)``,
        ``lrjax.transforms.adabound``, ...); called with a traced rate.
      min_lr: the smallest rate, > 0.
      max_lr: the largest rate, > ``min_lr``.
      num_lrs: parallel: the number of rates ``K`` >= 1.
      num_steps: training steps per copy (sweep: steps of the ramp).
      seeds: parallel: initialisations per rate; ``> 1`` needs ``init_fn``.
        Seed ``i`` starts from ``init_fn(jax.random.split(PRNGKey(0), seeds)[i])``.
      init_fn: ``key -> params``; vmapped over the seeds' keys.
      mode: ``"parallel"`` or ``"sweep"``.
      diverge_factor: the divergence threshold (> 1); ``None`` stops copies
        only on non-finite losses.
      chunk_size: parallel: rates per jitted call (``None``: all at once).
      mesh: parallel: a ``jax.sharding.Mesh`` or a sequence of devices to
        shard the rates over (``None``: the default device).
      progress: a rich progress bar for runs longer than about 2 s: ``True``,
        ``False``, or ``None`` (auto: only when stderr is a terminal).
      step_mode: sweep: ``"exp"`` (default) or ``"linear"`` ramp.

    Returns:
      A :class:`RangeTestResult` (``.suggest("valley")``, ``.best_lr``,
      ``.status``, ``.plot()``, ``.plot_curves()``, ``.to_dict()``).

    Raises:
      ValueError: a bad value, e.g. ``min_lr >= max_lr``, ``num_lrs < 1``,
        ``num_steps`` larger than the number of batches, a non-scalar loss, or
        batches whose leaves disagree on the number of steps.
      TypeError: a wrong type, e.g. an ``optimizer`` that is not callable.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> X = jax.random.normal(jax.random.PRNGKey(0), (20, 8, 3))
      >>> batches = (X, X @ jnp.array([1.0, -2.0, 0.5]))
      >>> loss_fn = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
      >>> result = lrjax.range_test(loss_fn, jnp.zeros(3), batches, optax.sgd,
      ...                           min_lr=1e-3, max_lr=10.0, num_lrs=8, num_steps=20)
      >>> result.losses.shape
      (1, 8, 20)
      >>> bool(result.diverged[-1]), bool(result.diverged[0])
      (True, False)
      >>> lr = result.suggest("valley")
    """
    check_choice("mode", mode, MODES)
    check_choice("step_mode", step_mode, STEP_MODES)
    lo = check_positive_float("min_lr", min_lr)
    hi = check_positive_float("max_lr", max_lr)
    if lo >= hi:
        raise ValueError(f"min_lr must be < max_lr, got min_lr={min_lr!r}, max_lr={max_lr!r}")
    num_lrs = check_int("num_lrs", num_lrs, minimum=1)
    num_steps = check_int("num_steps", num_steps, minimum=1)
    factor = _train.check_diverge_factor(diverge_factor)
    chunk = _train.check_chunk_size(chunk_size)
    the_mesh = _train.as_mesh(mesh)
    check_optional_bool("progress", progress)
    check_bool("return_params", return_params)
    if mode == "sweep":
        given = {
            "seeds": seeds != 1,
            "chunk_size": chunk is not None,
            "mesh": the_mesh is not None,
            "val_batches": val_batches is not None,
            "eval_every": eval_every is not None,
            "has_aux": has_aux is not False,
            "return_params": return_params,
        }
        bad = [name for name in PARALLEL_ONLY if given[name]]
        if bad:
            raise ValueError(f"{', '.join(bad)} apply to mode='parallel' only (one run in a sweep)")
    _train.check_optimizer(optimizer)
    prepared = _train.prepare(
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
    )
    prepared.source.check_steps(num_steps)
    every = _train.check_eval_every(eval_every, num_steps, prepared.val is not None)

    if mode == "sweep":
        lrs = ramp(lo, hi, num_steps, step_mode)
        out = _train.run(
            prepared,
            _train.RampRate(optimizer),
            lrs.astype(float_dtype())[None],
            num_steps=num_steps,
            diverge_factor=factor,
            progress=progress,
            description=f"range test sweep: {num_steps} steps",
        )
        return RampResult.from_sweep(
            lrs,
            out.losses[0, 0],
            out.smoothed[0, 0],
            int(out.stop_step[0, 0]),
            factor,
            step_mode,
        )
    lrs = np.geomspace(lo, hi, num_lrs)
    out = _train.run(
        prepared,
        _train.ConstantRate(optimizer),
        lrs.astype(float_dtype()),
        num_steps=num_steps,
        diverge_factor=factor,
        eval_every=every,
        chunk_size=chunk,
        mesh=the_mesh,
        progress=progress,
        return_params=return_params,
        description=f"range test: {num_lrs} rates x {num_steps} steps",
    )
    return RangeTestResult.from_engine(lrs, out, factor, every)
