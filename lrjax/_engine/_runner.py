"""The runner: plan a run, place its inputs on the devices, hand it to a strategy.

:func:`run` trains copies in chunks of ``chunk`` copies (the last one padded
by repeating the last copy, so every chunk has one shape and one
compilation); :func:`run_rounds` trains a program in rounds (tune's
searches). How the steps run is the execution strategy's business
(:mod:`lrjax._engine._strategies`: a compiled loop, or one step per call from
the host); the runner plans, places, reports progress, keeps what finished on
a ``KeyboardInterrupt`` and packs the outputs. The copy axis can be sharded
over a device mesh; every output is replicated, so each process of a
multi-host run gets the full result.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from lrjax._checks import (
    check_bool,
    check_choice,
    check_chunk_size,
    check_diverge_factor,
    check_mesh,
    check_optional_bool,
    float_dtype,
)
from lrjax._engine import _kernel
from lrjax._engine._placement import Placement, concat, take_copy, to_host
from lrjax._engine._prepare import Prepared
from lrjax._engine._progress import ProgressBar, progress_enabled
from lrjax._engine._static import Static
from lrjax._engine._strategies import (
    CHOICES,
    SCAN,
    STRATEGIES,
    ChunkOutput,
    Plan,
    Shared,
    Strategy,
    choose_strategy,
)

# ---------------------------------------------------------------- arguments


class RunOptions(NamedTuple):
    """How the fronts' runs are carried out (checked by :func:`check_run_options`).

    Attributes:
      diverge_factor: stop a copy when its smoothed loss exceeds this x its best
        (``inf``: only on a non-finite loss).
      chunk_size: copies per jitted call (``None``: all; ``"auto"``: what fits).
      mesh: shard the copy axis over this mesh, or ``None``.
      progress: ``True``/``False``/``None`` (auto).
      return_params: also return every copy's final parameters and state.
      strategy: ``"auto"`` or a name of :data:`~lrjax._engine._strategies.STRATEGIES`.
    """

    diverge_factor: float = 4.0
    chunk_size: int | str | None = None
    mesh: Mesh | None = None
    progress: bool | None = None
    return_params: bool = False
    strategy: str = "auto"


def check_run_options(
    *,
    diverge_factor: Any = 4.0,
    chunk_size: Any = None,
    mesh: Any = None,
    progress: Any = None,
    return_params: Any = False,
    strategy: Any = "auto",
) -> RunOptions:
    """The fronts' shared run arguments, checked, as :class:`RunOptions`."""
    check_optional_bool("progress", progress)
    check_bool("return_params", return_params)
    return RunOptions(
        diverge_factor=check_diverge_factor(diverge_factor),
        chunk_size=check_chunk_size(chunk_size),
        mesh=check_mesh(mesh),
        progress=progress,
        return_params=return_params,
        strategy=check_choice("strategy", strategy, CHOICES),
    )


# --------------------------------------------------------------------- plan


def make_plan(
    num_copies: int,
    num_steps: int,
    *,
    streamed: bool,
    eval_every: int | None,
    chunk: int | None,
    mesh: Mesh | None,
    strategy: Strategy = SCAN,
) -> Plan:
    """The :class:`Plan` for ``num_copies`` copies of ``num_steps`` steps: the
    strategy's copies per call (unless ``chunk`` is given) rounded up to a
    multiple of the device count, and its steps per block."""
    n_dev = 1 if mesh is None else mesh.devices.size
    chunk = strategy.chunk(num_copies, n_dev) if chunk is None else chunk
    chunk = min(chunk, num_copies)
    chunk = -(-chunk // n_dev) * n_dev  # a multiple of the device count
    block, per_call = strategy.blocks(num_steps, eval_every, streamed)
    return Plan(num_copies, chunk, num_steps, block, per_call, streamed, mesh, strategy.name,
                eval_every)  # fmt: skip


def make_spec(
    behaviour: Any,
    make_tx: Static,
    batch_fn: Any,
    *,
    num_steps: int,
    block: int,
    strategy: Strategy,
    evaluate: bool,
    seeded: bool = False,
    return_params: bool = False,
    padded: bool = True,
) -> _kernel.Spec:
    """The kernel's static :class:`~lrjax._engine._kernel.Spec` (one constructor for
    every run and search): evaluations inside the program only where the
    strategy evaluates inside, straight-line steps where it unrolls."""
    return _kernel.Spec(
        behaviour=behaviour,
        make_tx=make_tx,
        batch_fn=batch_fn,
        num_steps=num_steps,
        block=block,
        evaluate=evaluate and strategy.evaluates_inside,
        return_params=return_params,
        seeded=seeded,
        padded=padded,
        unroll=strategy.unroll,
    )


def kernel_spec(prepared: Prepared, make_tx: Static, plan: Plan, return_params: bool):
    """The kernel spec of a planned run."""
    return make_spec(
        prepared.model.behaviour, make_tx, prepared.source.batch_fn, num_steps=plan.num_steps,
        block=plan.block, strategy=STRATEGIES[plan.strategy],
        evaluate=plan.eval_every is not None, seeded=prepared.seeded,
        return_params=return_params, padded=plan.padded,
    )  # fmt: skip


# ---------------------------------------------------------------------- run


class EngineResult(NamedTuple):
    """Host (NumPy) results of :func:`run`.

    Attributes:
      losses: ``[seeds, K, num_steps]`` raw losses, NaN after a copy stopped.
      smoothed: the debiased EMA of the losses, same shape and NaN pattern.
      stop_step: ``[seeds, K]`` step at which a copy diverged, ``-1`` if never.
      completed: the number of copies finished (``K`` unless interrupted).
      expected: the number of copies asked for (``K``).
      aux: ``has_aux``: the aux pytree stacked ``[seeds, K, num_steps, ...]``.
      val_losses: with evaluation data: ``[seeds, K]`` after the last step.
      val_curves: with ``eval_every=n``: ``[seeds, K, num_steps // n]``.
      params: ``return_params``: each copy's final parameters ``[seeds, K, ...]``.
      state: ``return_params``: each copy's final model state ``[seeds, K, ...]``.
      strategy: the execution strategy that ran (``"scan"``, ``"blocks"`` or
        ``"sequential"``).
      data_passes: passes begun over the batches (a re-iterable stream read
        again from its start counts each epoch; 1 for stacked arrays; ``None``
        for a callable).
      take_copy: ``(tree, seed, index) -> tree``, one copy of ``params`` or
        ``state`` (the results, NumPy-only, take the best copy with it).
    """

    losses: np.ndarray
    smoothed: np.ndarray
    stop_step: np.ndarray
    completed: int
    expected: int
    aux: Any = None
    val_losses: np.ndarray | None = None
    val_curves: np.ndarray | None = None
    params: Any = None
    state: Any = None
    strategy: str = "scan"
    data_passes: int | None = None
    take_copy: Any = take_copy


def _chunk_of(tree: Any, c: int, chunk: int, axis: int = 0) -> Any:
    return jax.tree.map(
        lambda a: np.take(a, np.arange(c * chunk, (c + 1) * chunk), axis=axis), tree
    )


def _pad_copies(tree: Any, total: int, axis: int = 0) -> Any:
    def pad(a):
        n = a.shape[axis]
        if n == total:
            return a
        last = np.take(a, [n - 1], axis=axis)
        return np.concatenate([a, np.repeat(last, total - n, axis=axis)], axis=axis)

    return jax.tree.map(pad, tree)


def _steps_of(x: np.ndarray, num_steps: int) -> np.ndarray:
    """``[S, K, G, L, ...]`` per-block outputs to ``[S, K, num_steps, ...]``."""
    s, k, g, l_ = x.shape[:4]
    return x.reshape(s, k, g * l_, *x.shape[4:])[:, :, :num_steps]


def run(
    prepared: Prepared,
    make_tx: Static,
    hparams: Any,
    *,
    num_steps: int,
    options: RunOptions,
    eval_every: int | None = None,
    description: str = "training",
) -> EngineResult:
    """Trains ``K`` copies (``K`` = leading size of every ``hparams`` leaf).

    Args:
      prepared: the model, data and key from :func:`lrjax._engine.prepare`.
      make_tx: a :class:`Static` ``(h, step) -> GradientTransformation``.
      hparams: a pytree of host arrays with a leading copy axis ``K``.
      num_steps: the number of steps.
      options: the checked :class:`RunOptions` (divergence, chunks, mesh,
        progress, returned parameters, strategy: see ``choose_strategy``).
      eval_every: also evaluate every this many steps (needs evaluation data).
      description: the progress bar's label.

    Returns:
      An :class:`EngineResult`. On ``KeyboardInterrupt`` after at least one
      chunk finished, the finished chunks are returned (with a warning).
    """
    hparams = jax.tree.map(np.asarray, hparams)
    K = jax.tree.leaves(hparams)[0].shape[0]
    strategy = choose_strategy(options.strategy, prepared.facts, options.mesh)
    chunk = options.chunk_size
    if chunk == "auto":
        chunk = _auto_chunk(prepared, make_tx, hparams, K, num_steps, options, eval_every)
    plan = make_plan(K, num_steps, streamed=prepared.source.streamed, eval_every=eval_every,
                     chunk=chunk, mesh=options.mesh, strategy=strategy)  # fmt: skip
    spec = kernel_spec(prepared, make_tx, plan, options.return_params)
    place = Placement(options.mesh)
    total = plan.n_chunks * plan.chunk
    hparams = _pad_copies(hparams, total)
    # copy (s, k) folds s * total + k into the key: its stream depends on its index alone
    index = np.arange(prepared.seeds * total, dtype=np.uint32).reshape(prepared.seeds, total)
    shared = _shared_inputs(prepared, plan, place, options.diverge_factor)

    def chunk_of(c: int) -> Any:
        hs = place.copies(_chunk_of(hparams, c, plan.chunk))
        ix = place.copies(_chunk_of(index, c, plan.chunk, axis=1), axis=1)
        return strategy.run_chunk(plan, spec, place, shared, prepared.source, hs, ix)

    parts = _run_chunks(chunk_of, plan, options.progress, description)
    return _pack(parts, plan, prepared, options.return_params, eval_every)


def _auto_chunk(prepared, make_tx, hparams, K, num_steps, options, eval_every) -> int | None:
    """``chunk_size="auto"``: the most copies whose compiled program fits (see ``_memory``)."""
    from lrjax._engine._memory import auto_chunk

    compile_for = lambda c: compile_program(
        prepared, make_tx, hparams, c, num_steps, eval_every=eval_every, mesh=options.mesh,
        return_params=options.return_params,
    )  # fmt: skip
    return auto_chunk(compile_for, K, 1 if options.mesh is None else options.mesh.devices.size)


def _shared_inputs(prepared: Prepared, plan: Plan, place: Placement, factor: float) -> Shared:
    """The inputs every chunk shares, on the devices (data in memory as blocks)."""
    source, model, val = prepared.source, prepared.model, prepared.val
    in_memory = not source.streamed
    return Shared(
        params=place.shared(model.params),
        state=place.shared(model.state),
        base_key=place.shared(prepared.key),
        val=place.shared(val) if val is not None else None,
        factor=np.asarray(factor, float_dtype()),  # a host value: nothing to compile
        blocks=place.shared(source.in_memory(plan.num_steps, plan.block)) if in_memory else None,
    )


def _run_chunks(chunk_of, plan: Plan, progress: bool | None, description: str) -> list[Any]:
    """Every chunk's host outputs, the next chunk dispatched before waiting on this
    one; on ``KeyboardInterrupt`` the chunks that finished (with a warning)."""
    K = plan.num_copies
    parts: list[Any] = []
    with ProgressBar(K, progress_enabled(progress), description) as bar:
        try:
            pending = None
            for c in range(plan.n_chunks + 1):
                nxt = chunk_of(c) if c < plan.n_chunks else None
                if pending is not None:
                    parts.append(to_host(pending))
                    bar.advance(min(plan.chunk, K - (c - 1) * plan.chunk))
                pending = nxt
        except KeyboardInterrupt:
            if not parts:
                raise
            done = min(K, len(parts) * plan.chunk)
            warnings.warn(
                f"interrupted: returning the {done} of {K} copies that finished",
                RuntimeWarning,
                stacklevel=4,
            )
    return parts


def _pack(parts, plan: Plan, prepared: Prepared, return_params: bool, eval_every) -> EngineResult:
    """The chunks' outputs joined along the copy axis, as an :class:`EngineResult`."""
    K, num_steps = plan.num_copies, plan.num_steps
    done = min(K, len(parts) * plan.chunk)
    joined: ChunkOutput = jax.tree.map(lambda *xs: concat(xs, 1)[:, :done], *parts)
    behaviour = prepared.model.behaviour
    steps = lambda a: _steps_of(a, num_steps)
    return EngineResult(
        losses=steps(joined.losses),
        smoothed=steps(joined.smoothed),
        stop_step=joined.stop_step,
        completed=done,
        expected=K,
        aux=jax.tree.map(steps, joined.aux) if behaviour.has_aux else None,
        val_losses=joined.val_loss if prepared.val is not None else None,
        val_curves=joined.curves[:, :, : num_steps // eval_every] if eval_every else None,
        params=behaviour.user_params(joined.params) if return_params else None,
        state=behaviour.user_state(joined.state) if return_params else None,
        strategy=plan.strategy,
        data_passes=prepared.source.passes,
    )


# ------------------------------------------------------------------- rounds


class RoundsProgram(Protocol):
    """A program trained in rounds with a step between them (``lrjax._search``'s
    searches): what :func:`run_rounds` and the strategies call. The program
    holds its own inputs (placed by the caller with a :class:`Placement`); the
    runner hands it the training data, on the devices.

    Attributes:
      factor: the divergence factor (a host value), for strategies that train
        the program's copies from the host.
    """

    factor: Any

    def whole(self, blocks: Any) -> tuple[Any, Any]:
        """``"scan"``, data in memory: every round in one call: ``(records, final)``."""

    def start(self) -> Any:
        """The carry before the first round."""

    def round(self, carry: Any, r: int, data: Any) -> tuple[Any, Any]:
        """``"scan"``, streamed: round ``r`` on its batches ``[L, ...]``: ``(carry, record)``."""

    def host_round(self, carry: Any, r: int, train: Any) -> tuple[Any, Any]:
        """Host-driven strategies: round ``r``, its copies' steps trained by
        ``train(stage, start, n) -> (carry, step outputs)`` (steps ``start ..
        start + n - 1`` of the round's batches): ``(carry, record)``."""

    def final(self, carry: Any) -> Any:
        """What the run returns after the last round."""


def run_rounds(
    prepared: Prepared,
    program: RoundsProgram,
    *,
    rounds: int,
    num_steps: int,
    place: Placement,
    strategy: Strategy = SCAN,
    progress: bool | None = None,
    description: str = "training",
) -> tuple[Any, Any]:
    """Runs ``program`` over ``rounds`` rounds of ``num_steps // rounds`` steps, the
    way ``strategy`` runs steps (its ``run_rounds``). Progress is reported per round.

    Returns:
      ``(history, final)`` as host arrays: the records stacked over rounds and
      what ``program.final`` returned.
    """
    with ProgressBar(rounds, progress_enabled(progress), description) as bar:
        return strategy.run_rounds(program, prepared.source, rounds, num_steps, place, bar)


def compile_program(
    prepared: Prepared,
    make_tx: Static,
    hparams: Any,
    chunk: int,
    num_steps: int,
    *,
    eval_every: int | None = None,
    mesh: Mesh | None = None,
    return_params: bool = False,
) -> Any:
    """The compiled in-memory ``"scan"`` program for ``chunk`` copies (for its memory
    analysis: ``chunk_size="auto"`` and the benchmarks; the strategies differ
    little in memory per copy)."""
    plan = make_plan(
        chunk, num_steps, streamed=False, eval_every=eval_every, chunk=chunk, mesh=mesh
    )
    spec = kernel_spec(prepared, make_tx, plan, return_params)
    hparams = jax.tree.map(np.asarray, hparams)
    hs = jax.tree.map(lambda a: jax.ShapeDtypeStruct((plan.chunk, *a.shape[1:]), a.dtype), hparams)
    index = jax.ShapeDtypeStruct((prepared.seeds, plan.chunk), jnp.uint32)
    spec_tree = lambda t: jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x)), t
    )
    val = None if prepared.val is None else spec_tree(prepared.val)
    return _kernel.run_all.lower(
        hs,
        spec_tree(prepared.model.params),
        spec_tree(prepared.model.state),
        jax.ShapeDtypeStruct((2,), jnp.uint32),
        index,
        prepared.source.block_specs(plan.n_blocks, plan.block),
        jax.ShapeDtypeStruct((), float_dtype()),
        val,
        spec=spec,
        out_sharding=Placement(mesh).out_sharding,
    ).compile()
