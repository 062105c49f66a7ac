"""The host loop: plan the run, place the inputs on the devices, run the kernel.

Copies are trained in chunks of ``chunk`` copies (the last one padded by
repeating the last copy, so every chunk has one shape and one compilation);
each chunk runs the whole program at once when the data are in memory, or
block by block, carrying the copies' state across calls, when they are
streamed. The copy axis can be sharded over a device mesh; every output is
replicated, so each process of a multi-host run gets the full result. A
``KeyboardInterrupt`` keeps the chunks that finished.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lrjax._checks import check_bool, check_choice, check_count, check_optional_bool, float_dtype
from lrjax._engine import _kernel
from lrjax._engine._data import STREAM_BLOCK
from lrjax._engine._prepare import Prepared, StepFacts, check_diverge_factor
from lrjax._engine._progress import ProgressBar, progress_enabled
from lrjax._engine._static import Static

# ---------------------------------------------------------------- arguments


def as_mesh(mesh: Any) -> Mesh | None:
    """``None``, a ``jax.sharding.Mesh``, or a sequence of devices (a 1-D mesh)."""
    if mesh is None or isinstance(mesh, Mesh):
        return mesh
    try:
        devices = list(mesh)
    except TypeError:
        raise TypeError(
            f"mesh must be a jax.sharding.Mesh, a sequence of devices or None, got {mesh!r}"
        ) from None
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(
            f"mesh must be a jax.sharding.Mesh or a non-empty list of devices, got {mesh!r}"
        )
    return Mesh(np.array(devices), ("copies",))


def check_chunk_size(chunk_size: Any) -> int | str | None:
    """``chunk_size`` as ``None``, ``"auto"`` or an int >= 1."""
    if chunk_size is None or chunk_size == "auto":
        return chunk_size
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral):
        raise TypeError(f"chunk_size must be an int >= 1, 'auto' or None, got {chunk_size!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, 'auto' or None, got {chunk_size!r}")
    return int(chunk_size)


def check_eval_every(eval_every: Any, num_steps: int, has_val: bool) -> int | None:
    """``eval_every`` as ``None`` or an int in ``[1, num_steps]`` (needs ``val_batches``)."""
    if eval_every is None:
        return None
    n = check_count("eval_every", eval_every, minimum=1)
    if not has_val:
        raise ValueError(f"eval_every={eval_every!r} needs val_batches to evaluate on")
    if n > num_steps:
        raise ValueError(f"eval_every must be <= num_steps ({num_steps}), got {eval_every!r}")
    return n


class RunOptions(NamedTuple):
    """How the fronts' runs are carried out (checked by :func:`check_run_options`).

    Attributes:
      diverge_factor: stop a copy when its smoothed loss exceeds this x its best
        (``inf``: only on a non-finite loss).
      chunk_size: copies per jitted call (``None``: all; ``"auto"``: what fits).
      mesh: shard the copy axis over this mesh, or ``None``.
      progress: ``True``/``False``/``None`` (auto).
      return_params: also return every copy's final parameters and state.
      strategy: one of :data:`STRATEGIES`.
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
        mesh=as_mesh(mesh),
        progress=progress,
        return_params=return_params,
        strategy=check_choice("strategy", strategy, STRATEGIES),
    )


# --------------------------------------------------------------------- plan


#: The execution strategies (see :func:`choose_strategy`):
#:
#: - ``"scan"``: the copies vectorized (``vmap``), every step in one compiled loop;
#: - ``"blocks"``: the copies vectorized, one step compiled as straight-line code
#:   (no loop) and dispatched step after step from Python;
#: - ``"sequential"``: as ``"blocks"``, one copy (per device) at a time: the loop
#:   one writes by hand, with the range test's bookkeeping.
STRATEGIES = ("auto", "scan", "blocks", "sequential")
#: Primitives XLA on CPU runs several times slower inside a loop than outside one.
LOOP_SLOW_ON_CPU = ("conv_general_dilated",)
#: On a CPU, a step whose forward pass costs this many FLOPs (one copy, one batch)
#: is compute-bound: the copies run one by one (``"sequential"``).
SEQUENTIAL_FLOPS = 1e8


def choose_strategy(strategy: str, facts: StepFacts, mesh: Mesh | None) -> str:
    """``"auto"`` resolved from the backend and the traced step.

    On an accelerator: ``"scan"`` (launches cost more than the small steps of a
    range test; one program runs them all). On a CPU: ``"sequential"`` when the
    step holds a primitive of :data:`LOOP_SLOW_ON_CPU` or its forward pass
    costs at least :data:`SEQUENTIAL_FLOPS`, else ``"scan"``. XLA on CPU runs a
    convolution inside a loop several times slower than at a program's top
    level, and copies vmapped with their own weights (a grouped convolution,
    a batch of matrix products) no faster than one by one once a step is
    compute-bound, while a small step's dispatch from Python costs more than
    its arithmetic. The measurements are in ``benchmarks/README.md``
    (``strategies.py``).

    Example:
      >>> from lrjax._engine._prepare import StepFacts
      >>> choose_strategy("auto", StepFacts(frozenset({"dot_general"}), 1e6), None)
      'scan'
      >>> choose_strategy("scan", StepFacts(frozenset({"conv_general_dilated"}), 1e6), None)
      'scan'
    """
    if strategy != "auto":
        return strategy
    device = jax.devices()[0] if mesh is None else mesh.devices.flat[0]
    if device.platform != "cpu":
        return "scan"
    slow = any(p in facts.primitives for p in LOOP_SLOW_ON_CPU)
    return "sequential" if slow or facts.flops >= SEQUENTIAL_FLOPS else "scan"


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a run is cut: copies into chunks, steps into blocks and calls.

    Attributes:
      num_copies: copies ``K`` (per seed).
      chunk: copies per jitted call (a multiple of the device count).
      num_steps: training steps per copy.
      block: steps per block (an evaluation follows each block with ``eval_every``).
      per_call: blocks per call (in-memory data: all of them in one call).
      streamed: the batches come from an iterable, block by block.
      mesh: the device mesh the copies are sharded over, or ``None``.
      strategy: ``"scan"`` (the steps in a compiled loop, evaluations inside),
        ``"blocks"`` or ``"sequential"`` (one call per straight-line block,
        evaluations called from the host every ``eval_every`` steps).
      eval_every: evaluate every this many steps, or ``None``.
    """

    num_copies: int
    chunk: int
    num_steps: int
    block: int
    per_call: int
    streamed: bool
    mesh: Mesh | None
    strategy: str = "scan"
    eval_every: int | None = None

    @property
    def n_chunks(self) -> int:
        return -(-self.num_copies // self.chunk)

    @property
    def n_blocks(self) -> int:
        return -(-self.num_steps // self.block)

    @property
    def n_calls(self) -> int:
        return -(-self.n_blocks // self.per_call)


def make_plan(
    num_copies: int,
    num_steps: int,
    *,
    streamed: bool,
    eval_every: int | None,
    chunk: int | None,
    mesh: Mesh | None,
    strategy: str = "scan",
) -> Plan:
    """The :class:`Plan` for ``num_copies`` copies of ``num_steps`` steps."""
    n_dev = 1 if mesh is None else mesh.devices.size
    if chunk is None:
        chunk = n_dev if strategy == "sequential" else num_copies
    chunk = min(chunk, num_copies)
    chunk = -(-chunk // n_dev) * n_dev  # a multiple of the device count
    if strategy in ("blocks", "sequential"):
        # one step per call: each more step compiled into a call is more code to
        # compile on the first call, for little gain once the step is compute-bound
        block, per_call = 1, 1
    elif eval_every is not None:
        block = eval_every
        per_call = max(1, STREAM_BLOCK // block) if streamed else -(-num_steps // block)
    elif streamed:
        block, per_call = min(STREAM_BLOCK, num_steps), 1
    else:
        block, per_call = num_steps, 1
    return Plan(num_copies, chunk, num_steps, block, per_call, streamed, mesh, strategy, eval_every)


# -------------------------------------------------------------------- place


def _global_array(x: Any, sharding: NamedSharding) -> jax.Array:
    """``x`` as a global array (every process passes the same value)."""
    if jnp.issubdtype(jnp.result_type(x), jax.dtypes.prng_key):  # e.g. NNX RNG streams
        impl = jax.random.key_impl(x)
        return jax.random.wrap_key_data(_global_array(jax.random.key_data(x), sharding), impl=impl)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


class Placement:
    """Puts host data on the devices: shared inputs replicated, copies split."""

    def __init__(self, mesh: Mesh | None):
        self.mesh = mesh
        if mesh is None:
            self.out_sharding = None
            return
        axes = tuple(mesh.axis_names)
        self.out_sharding = NamedSharding(mesh, PartitionSpec())
        self._split0 = NamedSharding(mesh, PartitionSpec(axes))
        self._split1 = NamedSharding(mesh, PartitionSpec(None, axes))

    def shared(self, tree: Any) -> Any:
        if self.mesh is None:  # device_put copies; jnp.asarray would compile a program
            return jax.device_put(tree)
        return jax.tree.map(lambda x: _global_array(x, self.out_sharding), tree)

    def copies(self, tree: Any, axis: int = 0) -> Any:
        if self.mesh is None:
            return jax.device_put(tree)
        sharding = self._split0 if axis == 0 else self._split1
        return jax.tree.map(lambda x: _global_array(x, sharding), tree)


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


def _is_key(x: Any) -> bool:
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_host(tree: Any) -> Any:
    """Arrays as NumPy; PRNG key arrays (NNX RNG state) stay JAX arrays."""
    return jax.tree.map(lambda x: x if _is_key(x) else np.asarray(x), tree)


def _concat(xs: Any, axis: int) -> Any:
    return (jnp if _is_key(xs[0]) else np).concatenate(xs, axis=axis)


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
        progress, returned parameters, strategy: see :func:`choose_strategy`).
      eval_every: also evaluate every this many steps (needs evaluation data).
      description: the progress bar's label.

    Returns:
      An :class:`EngineResult`. On ``KeyboardInterrupt`` after at least one
      chunk finished, the finished chunks are returned (with a warning).
    """
    diverge_factor, chunk_size, mesh, progress, return_params, strategy = options
    hparams = jax.tree.map(np.asarray, hparams)
    K = jax.tree.leaves(hparams)[0].shape[0]
    source, model, val = prepared.source, prepared.model, prepared.val
    has_val = val is not None
    strategy = choose_strategy(strategy, prepared.facts, mesh)
    place = Placement(mesh)
    if chunk_size == "auto":
        from lrjax._engine._memory import auto_chunk

        compile_for = lambda c: compile_program(
            prepared, make_tx, hparams, c, num_steps, eval_every=eval_every, mesh=mesh,
            return_params=return_params,
        )  # fmt: skip
        chunk_size = auto_chunk(compile_for, K, 1 if mesh is None else mesh.devices.size)
    plan = make_plan(
        K,
        num_steps,
        streamed=source.streamed,
        eval_every=eval_every,
        chunk=chunk_size,
        mesh=mesh,
        strategy=strategy,
    )
    spec = kernel_spec(prepared, make_tx, plan, return_params)
    total = plan.n_chunks * plan.chunk
    hparams = _pad_copies(hparams, total)
    # copy (s, k) folds s * total + k into the key: its stream depends on its index alone
    index = np.arange(prepared.seeds * total, dtype=np.uint32).reshape(prepared.seeds, total)
    shared = _Shared(
        params=place.shared(model.params),
        state=place.shared(model.state),
        base_key=place.shared(prepared.key),
        val=place.shared(val) if has_val else None,
        factor=np.asarray(diverge_factor, float_dtype()),  # a host value: nothing to compile
        blocks=None if source.streamed else place.shared(source.in_memory(num_steps, plan.block)),
    )
    run_chunk = _run_scan if plan.strategy == "scan" else _run_blocks

    parts: list[Any] = []
    interrupted = False
    with ProgressBar(K, progress_enabled(progress), description) as bar:
        try:
            pending = None
            for c in range(plan.n_chunks + 1):
                nxt = None
                if c < plan.n_chunks:  # dispatch the next chunk before waiting on this one
                    hs = place.copies(_chunk_of(hparams, c, plan.chunk))
                    ix = place.copies(_chunk_of(index, c, plan.chunk, axis=1), axis=1)
                    nxt = run_chunk(plan, spec, place, shared, source, hs, ix)
                if pending is not None:
                    parts.append(to_host(pending))
                    bar.advance(min(plan.chunk, K - (c - 1) * plan.chunk))
                pending = nxt
        except KeyboardInterrupt:
            if not parts:
                raise
            interrupted = True
    done = min(K, len(parts) * plan.chunk)
    if interrupted and done < K:
        warnings.warn(
            f"interrupted: returning the {done} of {K} copies that finished",
            RuntimeWarning,
            stacklevel=3,
        )
    joined: ChunkOutput = jax.tree.map(lambda *xs: _concat(xs, 1)[:, :done], *parts)
    final_params, final_state = None, None
    if return_params:
        behaviour = model.behaviour
        final_params = behaviour.user_params(joined.params)
        final_state = behaviour.user_state(joined.state)
    return EngineResult(
        losses=_steps_of(joined.losses, num_steps),
        smoothed=_steps_of(joined.smoothed, num_steps),
        stop_step=joined.stop_step,
        completed=done,
        expected=K,
        aux=jax.tree.map(lambda a: _steps_of(a, num_steps), joined.aux)
        if model.behaviour.has_aux
        else None,
        val_losses=joined.val_loss if has_val else None,
        val_curves=joined.curves[:, :, : num_steps // eval_every] if eval_every else None,
        params=final_params,
        state=final_state,
        strategy=plan.strategy,
        data_passes=source.passes,
    )


class _Shared(NamedTuple):
    """The inputs every chunk of copies shares, on the devices."""

    params: Any
    state: Any
    base_key: Any
    val: Any
    factor: np.ndarray
    blocks: Any  # in-memory data (or a callable's step indices) [n_blocks, block, ...]


class ChunkOutput(NamedTuple):
    """One chunk's outputs (device arrays until copied back), copies on axis 1.

    Attributes:
      losses: ``[S, K, n_blocks, block]`` raw losses.
      smoothed: the same shape: the debiased EMA.
      aux: the aux pytree ``[S, K, n_blocks, block, ...]`` (``()`` without aux).
      curves: ``[S, K, n_evals]`` evaluations every ``eval_every`` steps.
      stop_step: ``[S, K]``.
      val_loss: ``[S, K]`` the evaluation after the last step.
      params: with ``return_params``, the final parameters, else ``()``.
      state: with ``return_params``, the final model state, else ``()``.
    """

    losses: Any
    smoothed: Any
    aux: Any
    curves: Any
    stop_step: Any
    val_loss: Any
    params: Any
    state: Any


def _chunk_output(steps, curves, final) -> ChunkOutput:
    return ChunkOutput(
        losses=steps.loss,
        smoothed=steps.smoothed,
        aux=steps.aux,
        curves=curves,
        stop_step=final.stop_step,
        val_loss=final.val_loss,
        params=final.params,
        state=final.state,
    )


def _run_scan(plan: Plan, spec, place: Placement, shared: _Shared, source, hs, ix) -> ChunkOutput:
    """The ``"scan"`` strategy: every step in a compiled loop (one call with in-memory
    data; with a stream, one call per ``per_call`` blocks, the carry passed along)."""
    out = place.out_sharding
    if shared.blocks is not None:
        blocks, final = _kernel.run_all(
            hs, shared.params, shared.state, shared.base_key, ix, shared.blocks, shared.factor,
            shared.val, spec=spec, out_sharding=out,
        )  # fmt: skip
        return _chunk_output(blocks.steps, blocks.val_score, final)
    carry, keys = _kernel.init(hs, shared.params, shared.state, shared.base_key, ix, spec=spec)
    per_call, t0 = [], 0
    for data in source.stream_blocks(plan.num_steps, plan.block, plan.per_call, plan.n_chunks > 1):
        carry, per_block = _kernel.train(
            carry, place.shared(data), np.int32(t0), hs, keys, shared.factor, shared.val,
            spec=spec, out_sharding=out,
        )  # fmt: skip
        per_call.append(to_host(per_block))
        t0 += plan.block * plan.per_call
    blocks = jax.tree.map(lambda *xs: np.concatenate(xs, 2), *per_call)
    final = _kernel.finish(carry, shared.val, spec=spec, out_sharding=out)
    return _chunk_output(blocks.steps, blocks.val_score, final)


def _run_blocks(plan: Plan, spec, place: Placement, shared: _Shared, source, hs, ix) -> ChunkOutput:
    """The ``"blocks"`` and ``"sequential"`` strategies: one call per straight-line block
    of steps, dispatched from the host as a hand-written loop would; evaluations
    every ``eval_every`` steps."""
    out = place.out_sharding
    carry, keys = _kernel.init(hs, shared.params, shared.state, shared.base_key, ix, spec=spec)
    if shared.blocks is not None:
        blocks = ((shared.blocks, np.int32(b)) for b in range(plan.n_blocks))
    else:
        data = source.stream_blocks(plan.num_steps, plan.block, 1, plan.n_chunks > 1)
        blocks = ((place.shared(d), np.int32(0)) for d in data)
    outs, curves = [], []
    for b, (data, index) in enumerate(blocks):
        t0 = np.int32(b * plan.block)
        carry, per_block = _kernel.train_block(
            carry, data, index, t0, hs, keys, shared.factor, spec=spec, out_sharding=out
        )
        outs.append(per_block)
        end = (b + 1) * plan.block
        if plan.eval_every is not None and end % plan.eval_every == 0:
            curves.append(_kernel.evaluate_copies(carry, shared.val, spec=spec, out_sharding=out))
    steps = jax.tree.map(lambda *xs: jnp.concatenate(xs, 2), *outs)
    final = _kernel.finish(carry, shared.val, spec=spec, out_sharding=out)
    curves = jnp.stack(curves, axis=2) if curves else jnp.zeros((*final.stop_step.shape, 0))
    return _chunk_output(steps, curves, final)


class RoundsProgram(Protocol):
    """A program trained in rounds with a step between them (``lrjax._search``'s
    searches): what :func:`run_rounds` calls. The program holds its own inputs
    (placed by the caller with a :class:`Placement`); the runner hands it the
    training data, on the devices."""

    def whole(self, blocks: Any) -> tuple[Any, Any]:
        """Every round in one call: ``(records stacked over rounds, final)``."""

    def start(self) -> Any:
        """The carry before the first round (streamed data)."""

    def round(self, carry: Any, r: int, data: Any) -> tuple[Any, Any]:
        """Round ``r`` on its batches ``data`` ``[L, ...]``: ``(carry, record)``."""

    def final(self, carry: Any) -> Any:
        """What the run returns after the last round."""


def run_rounds(
    prepared: Prepared,
    program: RoundsProgram,
    *,
    rounds: int,
    num_steps: int,
    place: Placement,
    progress: bool | None = None,
    description: str = "training",
) -> tuple[Any, Any]:
    """Runs ``program`` over ``rounds`` rounds of ``num_steps // rounds`` steps.

    With the batches in memory the whole program is one call; streamed, the
    runner reads one round's batches at a time and calls the program round by
    round. Progress is reported per round.

    Returns:
      ``(history, final)`` as host arrays: the records stacked over rounds and
      what ``program.final`` returned.
    """
    source = prepared.source
    L = num_steps // rounds
    with ProgressBar(rounds, progress_enabled(progress), description) as bar:
        if not source.streamed:
            records, final = program.whole(place.shared(source.in_memory(num_steps, L)))
            history, final = to_host(records), to_host(final)
            bar.advance(rounds)
            return history, final
        carry = program.start()
        parts = []
        for r, data in enumerate(source.stream_blocks(num_steps, L, 1)):
            carry, record = program.round(
                carry, r, place.shared(jax.tree.map(lambda x: x[0], data))
            )
            parts.append(to_host(record))
            bar.advance(1)
        history = jax.tree.map(lambda *xs: np.stack(xs), *parts)
        return history, to_host(program.final(carry))


def kernel_spec(prepared: Prepared, make_tx: Static, plan: Plan, return_params: bool):
    """The kernel's static :class:`~lrjax._engine._kernel.Spec` for a plan."""
    return _kernel.Spec(
        behaviour=prepared.model.behaviour,
        make_tx=make_tx,
        batch_fn=prepared.source.batch_fn,
        num_steps=plan.num_steps,
        block=plan.block,
        evaluate=plan.eval_every is not None and plan.strategy == "scan",
        return_params=return_params,
        seeded=prepared.seeded,
        padded=plan.n_calls * plan.per_call * plan.block > plan.num_steps,
        unroll=plan.strategy != "scan",
    )


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
