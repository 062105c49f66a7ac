"""``"sequential"``: one copy (per device) at a time, one step per call.

The loop one writes by hand, with the range test's bookkeeping: ``"blocks"``
on a chunk of one copy per device. A search's members, held together between
rounds, are trained one (per device) after another within each round.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from lrjax._engine._placement import Placement
from lrjax._engine._strategies import _blocks
from lrjax._engine._strategies._common import Stage, Strategy


@functools.partial(jax.jit, static_argnums=(2,))
def take_group(stage: tuple[Any, Any, Any], start: Any, size: int) -> tuple[Any, Any, Any]:
    """Copies ``start`` to ``start + size`` of ``(carry, hs, keys)``: one compiled
    call, where slicing every leaf eagerly was one dispatch per leaf and group."""
    carry, hs, keys = stage
    cut = lambda axis: lambda x: jax.lax.dynamic_slice_in_dim(x, start, size, axis)
    return jax.tree.map(cut(1), carry), jax.tree.map(cut(0), hs), jax.tree.map(cut(1), keys)


@jax.jit
def join_groups(parts: list[Any]) -> Any:
    """The groups' pytrees joined along the copy axis (axis 1), in one call."""
    return jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1), *parts)


def train_stage(stage: Stage, steps: list[Any], factor: Any, place: Placement) -> Any:
    """``stage``'s copies ``n`` at a time (``n`` = the device count), each group
    trained through every step before the next starts: ``(carry, outputs)``."""
    width, n = stage.keys.shape[1], place.devices
    carries, outs = [], []
    for i in range(0, width, n):
        # (the last group is narrower where n does not divide the width: its own compile)
        carry, hs, keys = take_group((stage.carry, stage.hs, stage.keys), i, min(n, width - i))
        # (the group's carry is take_group's fresh output: each step may reuse its buffers)
        group = Stage(carry, hs, keys, stage.t0, stage.spec)
        carry, out = _blocks.train_stage(group, steps, factor, place, owned=True)
        carries.append(carry)
        outs.append(out)
    return join_groups(carries), join_groups(outs)


SEQUENTIAL = Strategy(
    name="sequential",
    blocks=_blocks.blocks,
    chunk=lambda num_copies, n_dev: n_dev,
    unroll=True,
    evaluates_inside=False,
    run_chunk=_blocks.run_chunk,
    run_rounds=_blocks.host_rounds(train_stage),
)
