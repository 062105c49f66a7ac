"""``"sequential"``: one copy (per device) at a time, one step per call.

The loop one writes by hand, with the range test's bookkeeping: ``"blocks"``
on a chunk of one copy per device. A search's members, held together between
rounds, are trained one (per device) after another within each round.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from lrjax._engine._placement import Placement
from lrjax._engine._strategies import _blocks
from lrjax._engine._strategies._common import Stage, Strategy


def train_stage(stage: Stage, steps: list[Any], factor: Any, place: Placement) -> Any:
    """``stage``'s copies ``n`` at a time (``n`` = the device count), each group
    trained through every step before the next starts: ``(carry, outputs)``."""
    width, n = stage.keys.shape[1], place.devices
    carries, outs = [], []
    for i in range(0, width, n):
        part = lambda tree, axis=1, i=i: jax.tree.map(
            lambda x: jax.lax.slice_in_dim(x, i, min(i + n, width), axis=axis), tree
        )
        sub = Stage(part(stage.carry), part(stage.hs, 0), part(stage.keys), stage.t0, stage.spec)
        carry, out = _blocks.train_stage(sub, steps, factor, place)
        carries.append(carry)
        outs.append(out)
    join = lambda *xs: jnp.concatenate(xs, axis=1)
    return jax.tree.map(join, *carries), jax.tree.map(join, *outs)


SEQUENTIAL = Strategy(
    name="sequential",
    blocks=_blocks.blocks,
    chunk=lambda num_copies, n_dev: n_dev,
    unroll=True,
    evaluates_inside=False,
    run_chunk=_blocks.run_chunk,
    run_rounds=_blocks.host_rounds(train_stage),
)
