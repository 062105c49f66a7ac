"""The parallel range test against the ways people run one today, timed in one run.

Workload: the digits MLP of ``lrjax.data`` (64-64-10, batch 128, Adam), 32
log-spaced rates from ``--min-lr`` to ``--max-lr``, 100 steps each, the same
initial weights and the same minibatches everywhere:

* **lrjax parallel**: ``lrjax.range_test`` (one ``jit(vmap(scan))`` of 32 copies);
* **(a) lrjax, 32 sequential jitted runs**: the same engine one rate at a time
  (``chunk_size=1``: 32 calls of a jitted 100-step scan, compiled once);
* **JAX Python step loop**: a jitted Adam step called from a Python loop,
  3200 calls (no scan, no vmap), rates passed as data (compiled once); once
  with the losses kept as device arrays (the loop never waits), once reading
  ``float(loss)`` each step as the classic range tests do;
* **(b) torch Python step loop**: the same MLP in PyTorch (same weights),
  ``torch.optim.Adam``, one rate after another, ``loss.item()`` each step;
* **(c) torch-lr-finder**: one 100-step ``LRFinder.range_test`` ramp (one
  curve, not 32), on the same batches;
* **lrjax ramp**: ``lrjax.lr_find``, the same single ramp
  (one curve) as one jitted scan, for a like-for-like comparison with (c).

"incl. compile" is the first call with fresh functions (JAX traces and compiles
there; torch has nothing to compile, so both columns agree up to noise);
"steady" is the median of ``--repeats`` calls, run interleaved (ABAB...) so
that load changes on a shared machine hit every method alike. Ratios are
``method time / lrjax parallel time``: above 1 means lrjax parallel is faster.

    python benchmarks/range_test_speed.py [--repeats 5] [--num-lrs 32] [--steps 100]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import optax
import torch
from _common import compile_seconds, interleaved, load_note, machine_info, table
from _torch_ref import DEVICE, lr_finder_ramp, torch_batches, train_loop

import lrjax
from lrjax import data


def fresh(loss_fn):
    """A new function object with the same meaning (so JAX compiles anew)."""
    return lambda p, b: loss_fn(p, b)


def make_jax_loop(loss_fn, params, batches, lrs, num_steps, sync):
    """32 rates, each a Python loop of ``num_steps`` calls of a jitted Adam step.

    ``sync``: read each loss back as a Python float (as torch-lr-finder and
    fastai do, to smooth it and stop on divergence); otherwise the losses stay
    device arrays and the loop never waits (JAX's asynchronous dispatch).
    """
    xs = [jax.device_put(x) for x in batches[0][:num_steps]]
    ys = [jax.device_put(y) for y in batches[1][:num_steps]]
    lr_arrays = [jax.device_put(np.float32(lr)) for lr in lrs]

    def build():
        @jax.jit
        def step(p, s, x, y, lr):
            loss, g = jax.value_and_grad(loss_fn)(p, (x, y))
            u, s = optax.adam(lr).update(g, s, p)
            return optax.apply_updates(p, u), s, loss

        def run():
            out = []
            for lr in lr_arrays:
                p, s = params, optax.adam(lr).init(params)
                losses = []
                for t in range(num_steps):
                    p, s, loss = step(p, s, xs[t], ys[t], lr)
                    losses.append(float(loss) if sync else loss)
                out.append(np.asarray(losses if sync else jax.numpy.stack(losses)))
            return np.stack(out)

        return run

    return build


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-lrs", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--min-lr", type=float, default=1e-5)
    ap.add_argument("--max-lr", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    K, T = args.num_lrs, args.steps

    loss_fn, params, batches = data.make_demo(num_steps=T)
    lrs = np.geomspace(args.min_lr, args.max_lr, K)
    tb = torch_batches(batches)
    common = dict(min_lr=args.min_lr, max_lr=args.max_lr, num_steps=T, progress=False)

    def lrjax_parallel(fn):
        return lambda: lrjax.range_test(fn, params, batches, num_lrs=K, **common).losses

    def lrjax_sequential(fn):
        return lambda: lrjax.range_test(fn, params, batches, num_lrs=K, chunk_size=1, **common)

    def lrjax_ramp(fn):
        return lambda: lrjax.lr_find(fn, params, batches, **common).losses

    def torch_loop():
        return [train_loop(params, tb, float(lr), T) for lr in lrs]

    def torch_finder():
        return lr_finder_ramp(params, tb, args.min_lr, args.max_lr, T)

    jax_loop = make_jax_loop(loss_fn, params, batches, lrs, T, sync=False)
    jax_loop_sync = make_jax_loop(loss_fn, params, batches, lrs, T, sync=True)
    methods = {
        "lrjax parallel (32 rates, vmap)": (lrjax_parallel, K),
        "(a) lrjax, 32 sequential jitted runs": (lrjax_sequential, K),
        "JAX Python step loop (jitted step)": (None, K),
        "JAX Python step loop, float(loss) per step": (None, K),
        "(b) torch Python step loop": (None, K),
        "(c) torch-lr-finder ramp (1 curve)": (None, 1),
        "lrjax ramp (1 curve)": (lrjax_ramp, 1),
    }

    print(machine_info())
    print(
        f"torch {torch.__version__} on {DEVICE}, {torch.get_num_threads()} threads; "
        f"start: {load_note()}"
    )
    print(f"digits MLP 64-64-10, batch 128, Adam, {K} rates x {T} steps\n")

    # First calls, with fresh functions: what a user waits for the first time.
    first, compiled = {}, {}
    for name, (factory, _) in methods.items():
        if name.startswith("JAX Python step loop,"):
            thunk = jax_loop_sync()
        elif name.startswith("JAX Python"):
            thunk = jax_loop()
        elif name.startswith("(b)"):
            thunk = torch_loop
        elif name.startswith("(c)"):
            thunk = torch_finder
        else:
            thunk = factory(fresh(loss_fn))
        with compile_seconds() as c:
            t0 = time.perf_counter()
            jax.block_until_ready(thunk())
            first[name] = time.perf_counter() - t0
        compiled[name] = c[0]
        print(f"  first call: {name}: {first[name]:.2f} s ({load_note()})", flush=True)

    # Steady state: the same thunks again (compiled), interleaved.
    thunks = {
        "lrjax parallel (32 rates, vmap)": lrjax_parallel(loss_fn),
        "(a) lrjax, 32 sequential jitted runs": lrjax_sequential(loss_fn),
        "JAX Python step loop (jitted step)": jax_loop(),
        "JAX Python step loop, float(loss) per step": jax_loop_sync(),
        "(b) torch Python step loop": torch_loop,
        "(c) torch-lr-finder ramp (1 curve)": torch_finder,
        "lrjax ramp (1 curve)": lrjax_ramp(loss_fn),
    }
    steady = interleaved(thunks, repeats=args.repeats)

    ref_first = first["lrjax parallel (32 rates, vmap)"]
    ref = steady["lrjax parallel (32 rates, vmap)"]
    rows = []
    for name, (_, curves) in methods.items():
        rows.append(
            [
                name,
                curves,
                f"{first[name]:.3f}",
                f"{compiled[name]:.2f}",
                f"{steady[name]:.3f}",
                f"{1e6 * steady[name] / (curves * T):.1f}",
                f"{first[name] / ref_first:.2f}x",
                f"{steady[name] / ref:.2f}x",
            ]
        )
    print(
        table(
            rows,
            [
                "method",
                "curves",
                "s incl. compile",
                "of which compile",
                "s steady",
                "us/copy-step",
                "vs parallel incl. compile",
                "vs parallel steady",
            ],
        )
    )
    per_curve = steady["(c) torch-lr-finder ramp (1 curve)"] / (ref / K)
    print(
        f"\nPer curve: one torch-lr-finder ramp costs {per_curve:.1f}x one rate of the "
        f"parallel test (a ramp gives one noisy curve; the parallel test gives {K} full ones)."
    )
    print(f"end: {load_note()}")


if __name__ == "__main__":
    main()
