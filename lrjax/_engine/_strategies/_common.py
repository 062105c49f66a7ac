"""What every execution strategy shares: the plan of a run, its inputs on the
devices, a chunk's outputs, and the :class:`Strategy` each module provides."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from jax.sharding import Mesh


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
      strategy: the name of the :class:`Strategy` that runs it.
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

    @property
    def padded(self) -> bool:
        """The last block runs past ``num_steps`` (those steps are masked)."""
        return self.n_calls * self.per_call * self.block > self.num_steps


class Shared(NamedTuple):
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


def chunk_output(steps: Any, curves: Any, final: Any) -> ChunkOutput:
    """A :class:`ChunkOutput` from the kernel's step outputs, evaluations and end."""
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


class Stage(NamedTuple):
    """Copies to train a stretch of steps from the host (a round of a search, or
    its probe), as a strategy's ``advance`` takes them.

    Attributes:
      carry: the kernel's carry, ``[1, w, ...]``.
      hs: each copy's hyperparameters, ``[w, ...]``.
      keys: each copy's raw key, ``[1, w, 2]``.
      t0: the step the stretch starts at.
      spec: the kernel spec to train with (one step per block, unrolled).
    """

    carry: Any
    hs: Any
    keys: Any
    t0: Any
    spec: Any


class Strategy(NamedTuple):
    """How the steps of copies are run: one module per strategy.

    Attributes:
      name: the strategy's name (``strategy=`` in the fronts).
      blocks: ``(num_steps, eval_every, streamed) -> (block, per_call)``: steps
        per compiled block and blocks per call.
      chunk: ``(num_copies, n_dev) -> int``: copies per call when the user
        gives no ``chunk_size`` (``None``), before rounding to the devices.
      unroll: a block's steps are straight-line code, not a loop.
      evaluates_inside: evaluations run inside the compiled program (else
        called from the host between blocks).
      run_chunk: ``(plan, spec, place, shared, source, hs, ix) -> ChunkOutput``:
        one chunk of a run, from its initialisation to its end.
      run_rounds: ``(program, source, rounds, num_steps, place, bar) ->
        (records, final)``: a program trained in rounds (tune's searches).
    """

    name: str
    blocks: Callable[[int, int | None, bool], tuple[int, int]]
    chunk: Callable[[int, int], int]
    unroll: bool
    evaluates_inside: bool
    run_chunk: Callable[..., ChunkOutput]
    run_rounds: Callable[..., tuple[Any, Any]]
