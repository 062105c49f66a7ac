"""Execution strategies: how the steps of many copies are run, one module each.

- ``"scan"`` (:mod:`._scan`): the copies vectorized (``vmap``), every step in one
  compiled loop;
- ``"blocks"`` (:mod:`._blocks`): the copies vectorized, one step compiled as
  straight-line code (no loop) and dispatched step after step from Python;
- ``"sequential"`` (:mod:`._sequential`): as ``"blocks"``, one copy (per
  device) at a time: the loop one writes by hand, with the range test's
  bookkeeping.

Each module gives a :class:`Strategy`: its plan (steps per block, copies per
call), the kernel's form (a loop or straight-line code, evaluations inside or
from the host), and the two host routines the runner dispatches to: a chunk of
a run (range test, ramp, sweep) and a program trained in rounds (tune).
Adding a strategy is one module and one line in :data:`STRATEGIES`.
"""

from __future__ import annotations

import jax
from jax.sharding import Mesh

from lrjax._engine._strategies._blocks import BLOCKS
from lrjax._engine._strategies._common import (
    ChunkOutput,
    Plan,
    Shared,
    Stage,
    Strategy,
    chunk_output,
)
from lrjax._engine._strategies._scan import SCAN
from lrjax._engine._strategies._sequential import SEQUENTIAL

#: The strategies by name.
STRATEGIES: dict[str, Strategy] = {s.name: s for s in (SCAN, BLOCKS, SEQUENTIAL)}
#: What ``strategy=`` accepts: ``"auto"`` (see :func:`choose_strategy`) or a name.
CHOICES = ("auto", *STRATEGIES)
#: Primitives XLA on CPU runs several times slower inside a loop than outside one.
LOOP_SLOW_ON_CPU = ("conv_general_dilated",)
#: On a CPU, a step whose forward pass costs this many FLOPs (one copy, one batch)
#: is compute-bound: the copies run one by one (``"sequential"``).
SEQUENTIAL_FLOPS = 1e8


def choose_strategy(strategy: str, facts, mesh: Mesh | None) -> Strategy:
    """The :class:`Strategy` for ``strategy`` (``"auto"`` resolved from the backend
    and the traced step).

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
      >>> choose_strategy("auto", StepFacts(frozenset({"dot_general"}), 1e6), None).name
      'scan'
      >>> choose_strategy("scan", StepFacts(frozenset({"conv_general_dilated"}), 1e6), None).name
      'scan'
    """
    if strategy != "auto":
        return STRATEGIES[strategy]
    device = jax.devices()[0] if mesh is None else mesh.devices.flat[0]
    if device.platform != "cpu":
        return SCAN
    slow = any(p in facts.primitives for p in LOOP_SLOW_ON_CPU)
    return SEQUENTIAL if slow or facts.flops >= SEQUENTIAL_FLOPS else SCAN


__all__ = [
    "CHOICES",
    "LOOP_SLOW_ON_CPU",
    "SEQUENTIAL_FLOPS",
    "STRATEGIES",
    "ChunkOutput",
    "Plan",
    "Shared",
    "Stage",
    "Strategy",
    "choose_strategy",
    "chunk_output",
]
