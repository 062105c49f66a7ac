"""``"blocks"``: the copies vectorized, one step per call dispatched from the host.

The step is compiled as straight-line code (no loop: XLA on CPU runs
convolutions inside a loop several times slower than outside one) and called
step after step, as a hand-written training loop is; evaluations are called
from the host every ``eval_every`` steps. The host loop here (:func:`advance`)
is shared with ``"sequential"``, which runs it on one copy per device at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax._engine import _kernel
from lrjax._engine._placement import Placement, to_host
from lrjax._engine._strategies._common import (
    ChunkOutput,
    Plan,
    Shared,
    Stage,
    Strategy,
    chunk_output,
)


def blocks(num_steps: int, eval_every: int | None, streamed: bool) -> tuple[int, int]:
    """One step per call: each more step compiled into a call is more code to
    compile on the first call, for little gain once the step is compute-bound."""
    return 1, 1


def advance(
    stage: Stage,
    steps: Iterable[tuple[Any, Any]],
    factor: Any,
    place: Placement,
    *,
    val: Any = None,
    eval_every: int | None = None,
    owned: bool = True,
) -> tuple[Any, list[Any], list[Any]]:
    """Trains ``stage``'s copies one step per call.

    Args:
      stage: the copies, their hyperparameters, keys, first step and spec.
      steps: ``(data, index)`` per step: block ``index`` of ``data`` (``[n, 1, ...]``
        on the devices) is the step's batch.
      factor: the divergence factor.
      place: where the outputs go.
      val: evaluation data, with ``eval_every``.
      eval_every: evaluate after every this many steps (counted from step 0).
      owned: ``stage.carry``'s buffers belong to it alone (fresh from ``init``),
        so each step may reuse its input's; otherwise (a search's members,
        which may share buffers with the population) none does: one program
        to compile, not two.

    Returns:
      ``(carry, step outputs per step, evaluations)`` on the devices.
    """
    carry, out_sharding = stage.carry, place.out_sharding
    outs, curves = [], []
    for i, (data, index) in enumerate(steps):
        t = stage.t0 + i
        step = _kernel.train_block if owned else _kernel.train_block_kept
        carry, out = step(
            carry, data, index, np.int32(t), stage.hs, stage.keys, factor, spec=stage.spec,
            out_sharding=out_sharding,
        )  # fmt: skip
        outs.append(out)
        if eval_every is not None and (t + 1) % eval_every == 0:
            curves.append(
                _kernel.evaluate_all(carry, val, spec=stage.spec, out_sharding=out_sharding)
            )
    return carry, outs, curves


def join_steps(outs: list[Any]) -> Any:
    """Per-step outputs ``[S, K, 1, 1, ...]`` joined along the step axis (axis 2)."""
    return jax.tree.map(lambda *xs: jnp.concatenate(xs, 2), *outs)


def run_chunk(plan: Plan, spec, place: Placement, shared: Shared, source, hs, ix) -> ChunkOutput:
    """Initialise, one call per step (in-memory data stay on the device and the
    step's block is sliced out there; streamed data come one block at a time),
    then the final evaluation."""
    carry, keys = _kernel.init(hs, shared.params, shared.state, shared.base_key, ix, spec=spec)
    if shared.blocks is not None:
        steps = ((shared.blocks, np.int32(b)) for b in range(plan.n_blocks))
    else:
        data = source.stream_blocks(plan.num_steps, plan.block, 1, plan.n_chunks > 1)
        steps = ((place.shared(d), np.int32(0)) for d in data)
    stage = Stage(carry, hs, keys, 0, spec)
    carry, outs, curves = advance(
        stage, steps, shared.factor, place, val=shared.val, eval_every=plan.eval_every
    )
    final = _kernel.finish(carry, shared.val, spec=spec, out_sharding=place.out_sharding)
    curves = jnp.stack(curves, axis=2) if curves else jnp.zeros((*final.stop_step.shape, 0))
    return chunk_output(join_steps(outs), curves, final)


def host_rounds(train_stage: Callable[..., tuple[Any, Any]]) -> Callable[..., Any]:
    """``run_rounds`` for a strategy that trains from the host: the program's
    rounds in Python, each round's steps (and its probe's) by ``train_stage``.

    ``train_stage(stage, steps, factor, place) -> (carry, step outputs [1, w, n])``.
    """

    def run_rounds(program, source, rounds: int, num_steps: int, place: Placement, bar) -> Any:
        L = num_steps // rounds
        if not source.streamed:  # every step's batch on the device once, [num_steps, 1, ...]
            data = place.shared(source.in_memory(num_steps, 1))
            per_round = ((data, r * L) for r in range(rounds))
        else:  # one round's batches at a time, as [L, 1, ...]
            reshape = lambda x: x.reshape(L, 1, *x.shape[2:])
            read = source.stream_blocks(num_steps, L, 1)
            per_round = ((place.shared(jax.tree.map(reshape, d)), 0) for d in read)
        carry = program.start()
        parts = []
        for r, (data, first) in enumerate(per_round):

            def train(stage, start, n, data=data, first=first):
                steps = [(data, np.int32(first + start + i)) for i in range(n)]
                return train_stage(stage, steps, program.factor, place)

            carry, record = program.host_round(carry, r, train)
            parts.append(to_host(record))
            bar.advance(1)
        history = jax.tree.map(lambda *xs: np.stack(xs), *parts)
        return history, to_host(program.final(carry))

    return run_rounds


def train_stage(
    stage: Stage, steps: list[Any], factor: Any, place: Placement, owned: bool = False
) -> Any:
    """Every copy of ``stage`` at once, one step per call: ``(carry, outputs)``.
    ``stage.carry`` is kept (it may share buffers with the program's state)
    unless ``owned`` (see :func:`advance`)."""
    carry, outs, _ = advance(stage, steps, factor, place, owned=owned)
    steps_out = join_steps(outs)
    return carry, jax.tree.map(lambda x: x.reshape(*x.shape[:2], -1, *x.shape[4:]), steps_out)


BLOCKS = Strategy(
    name="blocks",
    blocks=blocks,
    chunk=lambda num_copies, n_dev: num_copies,
    unroll=True,
    evaluates_inside=False,
    run_chunk=run_chunk,
    run_rounds=host_rounds(train_stage),
)
