"""``"scan"``: the copies vectorized (``vmap``), every step inside one compiled loop.

With the batches in memory a chunk of copies is one call, from initialisation
to the final evaluation (and a search, every round of it); streamed, one call
per ``per_call`` blocks of steps (a search: one per round), the carry passed
from call to call.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from lrjax._engine import _kernel
from lrjax._engine._data import STREAM_BLOCK
from lrjax._engine._placement import Placement, to_host
from lrjax._engine._strategies._common import (
    ChunkOutput,
    Plan,
    Shared,
    Strategy,
    chunk_output,
)


def blocks(num_steps: int, eval_every: int | None, streamed: bool) -> tuple[int, int]:
    """All steps in one block (a block per evaluation, or per stream read)."""
    if eval_every is not None:
        per_call = max(1, STREAM_BLOCK // eval_every) if streamed else -(-num_steps // eval_every)
        return eval_every, per_call
    if streamed:
        return min(STREAM_BLOCK, num_steps), 1
    return num_steps, 1


def run_chunk(plan: Plan, spec, place: Placement, shared: Shared, source, hs, ix) -> ChunkOutput:
    """One call with in-memory data; with a stream, one call per ``per_call``
    blocks, the carry passed along."""
    out = place.out_sharding
    if shared.blocks is not None:
        blocks_out, final = _kernel.run_all(
            hs, shared.params, shared.state, shared.base_key, ix, shared.blocks, shared.factor,
            shared.val, spec=spec, out_sharding=out,
        )  # fmt: skip
        return chunk_output(blocks_out.steps, blocks_out.val_score, final)
    carry, keys = _kernel.init(hs, shared.params, shared.state, shared.base_key, ix, spec=spec)
    per_call, t0 = [], 0
    for data in source.stream_blocks(plan.num_steps, plan.block, plan.per_call, plan.n_chunks > 1):
        carry, per_block = _kernel.train(
            carry, place.shared(data), np.int32(t0), hs, keys, shared.factor, shared.val,
            spec=spec, out_sharding=out,
        )  # fmt: skip
        per_call.append(to_host(per_block))
        t0 += plan.block * plan.per_call
    blocks_out = jax.tree.map(lambda *xs: np.concatenate(xs, 2), *per_call)
    final = _kernel.finish(carry, shared.val, spec=spec, out_sharding=out)
    return chunk_output(blocks_out.steps, blocks_out.val_score, final)


def run_rounds(program, source, rounds: int, num_steps: int, place: Placement, bar) -> Any:
    """Every round in one call with the batches in memory; streamed, one call per
    round on that round's batches."""
    L = num_steps // rounds
    if not source.streamed:
        records, final = program.whole(place.shared(source.in_memory(num_steps, L)))
        bar.advance(rounds)
        return to_host(records), to_host(final)
    carry = program.start()
    parts = []
    for r, data in enumerate(source.stream_blocks(num_steps, L, 1)):
        carry, record = program.round(carry, r, place.shared(jax.tree.map(lambda x: x[0], data)))
        parts.append(to_host(record))
        bar.advance(1)
    history = jax.tree.map(lambda *xs: np.stack(xs), *parts)
    return history, to_host(program.final(carry))


SCAN = Strategy(
    name="scan",
    blocks=blocks,
    chunk=lambda num_copies, n_dev: num_copies,
    unroll=False,
    evaluates_inside=True,
    run_chunk=run_chunk,
    run_rounds=run_rounds,
)
