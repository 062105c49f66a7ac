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
    every step (compared by the optimizer's identity: one program per optimizer)."""

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
    """The learning-rate range test: many rates trained side by side with ``jax.vmap``.

    ``num_lrs`` log-spaced rates from ``min_lr`` to ``max_lr``; each copy
    trains with its constant rate for ``num_steps`` from the same initial
    parameters on the same batches, in compiled programs that run the copies
    side by side (``jax.vmap``) or one by one (see **Strategy**). Rates are
    data, not constants: a
    second call with other ``min_lr``/``max_lr`` (same ``num_lrs``, functions
    and shapes) reuses the compilation, also for a freshly built model of the
    same structure. Each rate gets a score: its validation loss after the last
    step with ``val_batches``, else its mean training loss over the last 10%
    of steps; ``best_lr`` is the rate with the best score and ``suggest()``
    the rate to train with (``"budget"``, ``best_lr / 3``, with
    ``val_batches``; ``"near_best"`` without: see
    :meth:`RangeTestResult.suggest`).

    The classic single run along a ramp of rates (fastai ``lr_find``,
    torch-lr-finder) is :func:`lrjax.lr_find`; ``mode="sweep"`` still runs it
    for one release, with a ``DeprecationWarning``.

    **Strategy.** ``"scan"`` vectorizes the copies and runs every step inside
    one compiled ``lax.scan``; ``"blocks"`` vectorizes the copies and
    dispatches one jitted step per call from Python; ``"sequential"`` runs one
    copy (per device) at a time, one jitted step per call, as a hand-written
    training loop does. ``"auto"`` (the default) picks ``"scan"`` on an
    accelerator; on a CPU ``"sequential"`` when the training step holds a
    convolution (XLA on CPU runs convolutions inside a loop several times
    slower than outside one) or its forward pass costs at least 1e8 FLOPs
    (compute-bound: vectorizing gains nothing), else ``"scan"`` (see
    ``benchmarks/README.md``, range-test strategies). Every strategy computes
    the same numbers up to float rounding (differently fused kernels);
    ``result.strategy`` says which one ran.

    **Models.** ``params`` may be a pytree of arrays with ``loss_fn(params,
    batch)``; a Flax NNX module with ``loss_fn(model, batch)``; a Linen
    ``(module, variables)`` pair with ``loss_fn(apply, batch)``; an Equinox
    module with ``loss_fn(model, batch)`` (its inexact arrays trained, the rest
    static; with ``state=`` an ``eqx.nn.State``, ``loss_fn(model, state, batch)
    -> (loss, new_state)``; evaluated under ``eqx.nn.inference_mode``;
    ``best_params()`` a module of your class); or, with ``state=``, plain JAX
    with state: ``loss_fn(params, state, batch) -> (loss, new_state)``. An NNX
    module trains in the mode it is in (``model.train()``, or an ``nnx.view``):
    every variable that is not an ``nnx.Param`` (BatchNorm statistics, RNG
    counters, your own ``nnx.Variable``) is carried per copy through the scan.
    A Linen model's non-``params`` collections (``batch_stats``) are mutable and
    carried; ``apply.training`` tells the model whether it trains (call
    ``apply(x, train=apply.training)``), and training steps get a
    ``"dropout"`` RNG stream. The model you pass is never changed.

    **Randomness.** Each copy (rate, seed) draws its own random streams from
    ``key`` (default ``jax.random.PRNGKey(0)``): copy ``i`` folds ``i`` into
    ``key``, NNX RNG streams are re-seeded from it, and step ``t`` of a copy
    uses ``fold_in(copy_key, t)`` (a Linen model's ``"dropout"`` stream).
    Randomness by parameter name: a ``loss_fn`` (or ``eval_fn``) that declares a
    parameter ``key`` receives that step key (Equinox, plain JAX); one that
    declares ``rngs`` receives ``nnx.Rngs(step_key)`` (Flax NNX only, e.g. the
    Flax tutorial's ``loss_fn(model, batch, rngs)`` calling ``model(x, rngs)``);
    both are ``None`` at evaluation. Dropout therefore differs between copies,
    and two calls with the same ``key`` give identical numbers. The same rule
    holds in :func:`lrjax.lr_find`, :func:`lrjax.sweep` and :func:`lrjax.tune`
    (see the docs page "Models from any framework").

    **Evaluation.** With ``val_batches`` (a pytree with a leading axis of
    evaluation batches, or a list/iterable of batches), every copy is scored
    after its last step on the mean of ``eval_fn`` over them (default: the
    loss), NNX models in eval mode (no Dropout, BatchNorm running averages)
    and Linen models with ``apply.training == False``; ``eval_every=n`` also
    evaluates every ``n`` steps. ``val_losses`` and ``val_curves`` hold the
    numbers; ``scores``, ``best_lr`` and the suggestions then use the
    validation loss.

    **Data.** ``batches`` is a pytree of arrays with a leading step axis (a
    ``tuple``, a dict), a callable ``step -> batch`` traced inside the scan, or
    any other iterable of batches (a ``list``, a generator, a data loader;
    torch / TensorFlow tensors and anything with ``__array__`` or
    ``__dlpack__`` are converted to NumPy on the host): the first
    ``num_steps`` are sent to the devices in blocks of 32 steps (or
    ``eval_every``), the copies' state carried from block to block, with the
    numbers of the stacked call. Streamed batches must all
    have the first one's shapes (drop a last partial batch).

    **Divergence.** Every copy keeps a debiased EMA of its loss (beta 0.98). A
    copy whose loss is non-finite, or whose smoothed loss exceeds
    ``diverge_factor`` x its best smoothed loss (for a negative best: rises by
    more than ``(diverge_factor - 1) * |best|``), is frozen from that step: its
    parameters, optimizer state and model state stop changing (those of its
    stop step are what ``return_params`` returns), its later losses are NaN
    and it is marked diverged. Copies never interact: the other copies'
    numbers are bit for bit those of a run where the bad copy had any other
    rate, and of a run without it at the same ``chunk_size`` (same shapes per
    jitted call); a run with another number of copies per call can differ in
    the last bit, because XLA may pick other kernels for another batch size.
    On a GPU, JAX's default float32 matmuls are TF32, and a batched matmul may
    round differently from a single one: parallel and one-at-a-time runs then
    agree to about 1e-3; ``jax.config.update("jax_default_matmul_precision",
    "highest")`` brings that back to float32 rounding.

    **Memory and devices.** The program holds, per copy, its parameters, its
    optimizer state (Adam: two more copies of the parameters), its model state
    and the activations of one step; the data and evaluation batches are
    shared. For example 32 rates of a 1M-parameter model with Adam need
    32 x 1M x 4 bytes x 3 = 384 MB plus activations. ``chunk_size`` evaluates
    the rates in jitted chunks of that many (one compilation; the last chunk
    is padded); ``chunk_size="auto"`` picks the largest chunk whose cost (from
    the compiled program's own memory analysis, measured at one and two
    copies per device) fits 70% of the free device memory (host RAM on a CPU).
    ``mesh`` (a ``jax.sharding.Mesh`` or a list of devices) shards the rate
    axis over its devices (all mesh axes, flattened); results agree with a
    one-device run to float rounding. Multi-host: call ``jax.distributed.initialize()`` in every
    process, build a mesh over ``jax.devices()`` (all hosts), and call
    ``range_test`` with identical arguments in every process (as in any SPMD
    JAX program); each process gets the full result. ``KeyboardInterrupt``
    during a chunked run returns the chunks already finished (with a warning).

    Gradient accumulation: ``optimizer=lambda lr: optax.MultiSteps(optax.adam(lr),
    every_k_schedule=4)`` (each step is a micro-batch). Mixed precision: build
    the model with ``dtype=jnp.bfloat16`` (Flax); losses are tracked in float32.

    Args:
      loss_fn: ``(params, batch) -> scalar`` loss (see **Models** for Flax and
        stateful forms); with ``has_aux=True`` it returns ``(loss, aux)``.
      params: initial parameters (a pytree of float arrays), an ``nnx.Module``,
        or a ``(linen_module, variables)`` pair. May be ``None`` when
        ``init_fn`` is given.
      batches: a pytree of arrays with a leading step axis (at least
        ``num_steps`` long), a callable ``step -> batch`` (``step`` is an int32
        scalar), or an iterable of batches (see **Data**).
      optimizer: ``lr -> optax.GradientTransformation`` (``optax.adam``,
        ``optax.sgd``, ``lambda lr: optax.sgd(lr, momentum=0.9)``,
        ``lrjax.adabound``, ...); called with a traced rate.
      min_lr: the smallest rate, > 0. The default 1e-7 is fastai's
        ``start_lr``, the same in the ``lrjax find`` command.
      max_lr: the largest rate, > ``min_lr``.
      num_lrs: parallel: the number of rates ``K`` >= 1.
      num_steps: training steps per copy (the deprecated mode: steps of the ramp).
      seeds: parallel: initialisations per rate; ``> 1`` needs ``init_fn``.
        Seed ``i`` starts from ``init_fn(jax.random.split(PRNGKey(0), seeds)[i])``.
      init_fn: ``key -> params``; vmapped over the seeds' keys.
      mode: ``"parallel"``; ``"sweep"`` (deprecated) runs :func:`lrjax.lr_find`.
      diverge_factor: the divergence threshold (> 1); ``None`` stops copies
        only on non-finite losses.
      chunk_size: parallel: rates per jitted call (``None``: all at once;
        ``"auto"``: the most that fit the free memory).
      mesh: parallel: a ``jax.sharding.Mesh`` or a sequence of devices to
        shard the rates over (``None``: the default device).
      progress: ``None`` (the default) or ``True``: once a run takes longer
        than about 2 s, a progress bar where one can be drawn (rich installed,
        stderr a terminal or a notebook), else a plain line on stderr every
        few seconds; ``False``: nothing.
      step_mode: ``mode="sweep"`` only (see :func:`lrjax.lr_find`).
      state: plain JAX: the initial model state, with ``loss_fn(params, state,
        batch) -> (loss, new_state)`` (``((loss, aux), new_state)`` with
        ``has_aux``); ``eval_fn(params, state, batch)``. With ``seeds > 1``
        every initialisation starts from this state.
      key: the PRNG key of the copies' random streams (``PRNGKey(0)``).
      val_batches: parallel: evaluation batches (see **Evaluation**).
      eval_fn: ``(params, batch) -> scalar`` evaluation score (``(model,
        batch)`` for NNX, ``(apply, batch)`` for Linen); default: the loss.
      eval_every: parallel: also evaluate every this many steps (needs
        ``val_batches``).
      has_aux: ``loss_fn`` returns ``(loss, aux)``; ``result.aux`` holds aux
        stacked ``[seeds, K, num_steps, ...]``.
      return_params: parallel: ``result.params`` and ``result.state`` hold every
        copy's final parameters and model state (BatchNorm statistics) stacked
        ``[seeds, K, ...]`` (``result.best_params()``, ``result.best_state()``).
      strategy: ``"auto"``, ``"scan"``, ``"blocks"`` or ``"sequential"`` (see
        **Strategy**).
      trainable: which arrays of the model to train, the rest carried unchanged
        (fine-tuning): an NNX filter for an ``nnx.Module`` (default
        ``nnx.Param``, e.g. ``nnx.PathContains("head")``), an Equinox filter
        for an ``eqx.Module`` (default ``eqx.is_inexact_array``: a callable or
        a pytree of bools shaped like the model). Not for plain pytrees.

    Returns:
      A :class:`RangeTestResult` (parallel: ``.best_lr``, ``.suggest()``,
      ``.status``, ``.val_losses``, ``.plot()``, ``.plot_curves()``,
      ``.to_dict()``) or a :class:`RampResult` (the deprecated ramp mode).

    Raises:
      ValueError: a bad value, e.g. ``min_lr >= max_lr``, ``num_lrs < 1``,
        ``num_steps`` larger than the number of batches, a non-scalar loss,
        batches whose leaves disagree on the number of steps, a ragged
        streamed batch.
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
      >>> lr = result.suggest()  # no val_batches: the "near_best" rule
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
