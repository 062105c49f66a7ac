"""A vectorized sweep over one-cycle's ``max_value`` x ``pct_start``.

``lrjax.sweep`` trains every setting of the grid as one copy of the model, all
in a single ``jax.jit(jax.vmap(lax.scan(...)))``: 8 peak rates x 4 warmup
fractions = 32 one-cycle runs of Adam on the scikit-learn digits, side by side.
This works because an lrjax schedule is a pytree whose fields may be traced
arrays: ``lrjax.one_cycle(max_value, total_steps, pct_start=pct_start)`` is
built inside the vmapped function with a different ``max_value`` and
``pct_start`` in every copy. The script prints the grid of final losses, the
best setting, and writes ``vectorized_sweep.png``.

Run:  python examples/vectorized_sweep.py       (LRJAX_EXAMPLE_FAST=1: smaller grid)
Needs: pip install -e ".[demo]"
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import numpy as np
import optax

import lrjax
from lrjax import data

FAST = os.environ.get("LRJAX_EXAMPLE_FAST") == "1"
STEPS = 100 if FAST else 300
MAX_VALUES = np.geomspace(1e-3, 0.3, 4 if FAST else 8)
PCT_STARTS = [0.1, 0.3] if FAST else [0.1, 0.2, 0.3, 0.5]
OUT = "vectorized_sweep.png"


def make_optimizer(max_value, pct_start):
    """One setting: Adam under a one-cycle schedule (the values arrive traced)."""
    return optax.adam(lrjax.one_cycle(max_value, STEPS, pct_start=pct_start))


def main() -> None:
    loss_fn, params, batches = data.make_demo(num_steps=STEPS, batch_size=128)
    result = lrjax.sweep(
        loss_fn,
        params,
        batches,
        make_optimizer,
        grid={"max_value": MAX_VALUES, "pct_start": PCT_STARTS},
        progress=False,
    )
    n = len(MAX_VALUES) * len(PCT_STARTS)
    print(f"{n} one-cycle runs of {STEPS} steps, trained side by side")
    print("mean loss over the last 10% of steps (rows: max_value, columns: pct_start)")
    print("max_value " + "".join(f"{p:>10}" for p in PCT_STARTS))
    grid = result.scores_grid()
    for mv, row in zip(MAX_VALUES, grid):
        print(f"{mv:9.3g} " + "".join(f"{s:10.4f}" for s in row))
    best = result.best
    print(
        f"best setting: max_value={best['max_value']:.3g}, pct_start={best['pct_start']:.2g}"
        f" (loss {result.scores[result.best_index]:.4f})"
    )
    fig = result.plot()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
