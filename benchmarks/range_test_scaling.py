"""How the parallel range test scales with the number of rates K, against the matmul peak.

For K = 8, 32, 128, 512 rates, ``lrjax.range_test`` (Adam, parallel mode) is run
on MLPs of the digits data (``lrjax.data``):

* ``digits``: the demo MLP 64-64-10, batch 128, ``--steps`` steps (default 100),
  all K copies in one jitted call; the largest K is run again in chunks of 128;
* ``wide``: 64-1024-1024-10 (two hidden layers of width 1024), batch
  ``--wide-batch`` (default 512), ``--wide-steps`` steps (default 3), in chunks
  of ``--wide-chunk`` rates (default 32) to bound memory (one copy's parameters
  and Adam state are ~13 MB); one extra row at batch 128 shows what the batch
  size does to the matmul efficiency;
* ``wide-1``: 64-1024-10 (one hidden layer of 1024), same batch, steps, chunks.

Each configuration is called once to compile and warm up (skipped when an
earlier K already compiled the same chunk shape), then timed: median of up to
``--repeats`` runs, fewer once they took 20 s. "compile s" is the time JAX
itself reports for tracing, lowering and compiling (``jax.monitoring``).

FLOP count (stated, analytic): per copy and step, the matmuls of the forward pass
cost ``2 B sum(n_in n_out)`` over the layers, the weight gradients the same
again, and the input gradients of every layer but the first (whose input is
data, not differentiated) ``2 B sum_{l>=2}(n_in n_out)``. Bias adds, ReLU,
softmax and the Adam update are not counted, so the GFLOP/s shown understate
the work done. The peak is the best GFLOP/s of a jitted f32 ``n x n`` matmul
(median over repeats, best of n = 512, 1024, 2048) measured at the start
of the same run. A last table gives each model's ceiling: its forward+backward
alone, vmapped over K = 32 copies, without the optimizer, the divergence
bookkeeping or the scan.

    python benchmarks/range_test_scaling.py [--ks 8,32,128,512] [--steps 100]
        [--wide-steps 3] [--wide-batch 512] [--wide-chunk 32] [--repeats 3]
        [--skip-wide-1]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import jax
import jax.numpy as jnp
from _common import block, compile_seconds, load_note, machine_info, matmul_peak, table

import lrjax
from lrjax import data


def matmul_flops(sizes: tuple[int, ...], batch: int) -> int:
    """Matmul FLOPs of one forward + backward pass of an MLP (see the module doc)."""
    layers = list(itertools.pairwise(sizes))
    total = sum(i * o for i, o in layers)
    input_grads = sum(i * o for i, o in layers[1:])
    return 2 * batch * (2 * total + input_grads)


def time_range_test(loss_fn, params, batches, K, steps, chunk, repeats, warm, budget_s=20.0):
    """(compile seconds, median wall seconds) of one range-test configuration.

    With ``warm``, a first call compiles (JAX's own compile time is summed from
    its monitoring events) and warms up; then up to ``repeats`` calls are
    timed, fewer once they have taken ``budget_s``.
    """

    def run():
        return lrjax.range_test(
            loss_fn,
            params,
            batches,
            min_lr=1e-5,
            max_lr=1.0,
            num_lrs=K,
            num_steps=steps,
            chunk_size=chunk,
            progress=False,
        )

    with compile_seconds() as compiled:
        if warm:
            run()
        times: list[float] = []
        while len(times) < repeats:
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
            if sum(times) > budget_s:
                break
    return compiled[0], statistics.median(times)


def bare_grad_seconds(loss_fn, params, batches, K, repeats=5):
    """Median seconds of one jitted, vmapped ``value_and_grad`` over K copies (no optimizer)."""
    stacked = jax.tree.map(lambda p: jnp.broadcast_to(p, (K, *p.shape)) + 0, params)
    batch = jax.tree.map(lambda b: jnp.asarray(b[0]), batches)
    f = jax.jit(jax.vmap(jax.value_and_grad(loss_fn), in_axes=(0, None)))
    block(f(stacked, batch))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        block(f(stacked, batch))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", default="8,32,128,512", help="comma-separated numbers of rates")
    ap.add_argument("--steps", type=int, default=100, help="steps per copy, digits MLP")
    ap.add_argument("--wide-steps", type=int, default=3, help="steps per copy, wide MLPs")
    ap.add_argument("--wide-batch", type=int, default=512, help="batch size, wide MLPs")
    ap.add_argument("--wide-chunk", type=int, default=32, help="rates per jitted call, wide MLPs")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per configuration (max)")
    ap.add_argument("--skip-wide-1", action="store_true", help="leave out the 64-1024-10 MLP")
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    wb, wc = args.wide_batch, args.wide_chunk

    print(machine_info())
    print(f"start: {load_note()}")
    peak, peak_n = matmul_peak()
    print(
        f"matmul peak (jitted f32 [{peak_n}, {peak_n}] @ [{peak_n}, {peak_n}], median): "
        f"{peak:.1f} GFLOP/s"
    )

    # (name, hidden, batch, steps, [(K, chunk), ...])
    models = [
        ("digits", (64,), 128, args.steps, [(k, None) for k in ks] + [(max(ks), 128)]),
        ("wide", (1024, 1024), wb, args.wide_steps, [(k, wc) for k in ks]),
    ]
    if wb != 128:
        models.append(("wide", (1024, 1024), 128, args.wide_steps, [(min(32, max(ks)), wc)]))
    if not args.skip_wide_1:
        models.append(("wide-1", (1024,), wb, args.wide_steps, [(k, wc) for k in ks]))
    rows, ceilings = [], []
    for name, hidden, batch, steps, configs in models:
        loss_fn, params, batches = data.make_demo(num_steps=steps, batch_size=batch, hidden=hidden)
        sizes = (64, *hidden, 10)
        label = f"{name} {'-'.join(map(str, sizes))}"
        flops = matmul_flops(sizes, batch)
        base = None
        shapes_done = set()
        for K, c in configs:
            shape = min(K, c or K)  # copies per jitted call: one compilation per shape
            compiled, wall = time_range_test(
                loss_fn, params, batches, K, steps, c, args.repeats, warm=shape not in shapes_done
            )
            shapes_done.add(shape)
            per = wall / (K * steps)
            gflops = flops / per / 1e9
            base = base or (K, wall)
            rows.append(
                [
                    label,
                    batch,
                    K,
                    steps,
                    "all" if c is None or c >= K else c,
                    f"{wall:.3f}",
                    f"{wall / base[1]:.1f}x (K {K / base[0]:g}x)",
                    f"{compiled:.2f}",
                    f"{1e6 * per:.1f}",
                    f"{flops / 1e6:.2f}",
                    f"{gflops:.1f}",
                    f"{100 * gflops / peak:.0f}%",
                ]
            )
            print(" | ".join(map(str, rows[-1])), flush=True)
        k_bare = min(32, max(ks))
        t = bare_grad_seconds(loss_fn, params, batches, k_bare)
        g = flops * k_bare / t / 1e9
        ceilings.append(
            [label, batch, k_bare, f"{1e6 * t / k_bare:.1f}", f"{g:.1f}", f"{100 * g / peak:.0f}%"]
        )
    print(f"end: {load_note()}\n")
    print(
        table(
            rows,
            [
                "model",
                "batch",
                "K",
                "steps",
                "chunk",
                "wall s",
                "wall vs smallest K",
                "compile s",
                "us/copy-step",
                "MFLOP/copy-step",
                "GFLOP/s",
                f"of peak ({peak:.0f} GFLOP/s)",
            ],
        )
    )
    print(
        "\nCeiling: the model's forward+backward alone (one jitted vmap of value_and_grad "
        "over K copies, one batch; no optimizer, no divergence bookkeeping, no scan):\n"
    )
    print(table(ceilings, ["model", "batch", "K", "us/copy", "GFLOP/s", "of peak"]))


if __name__ == "__main__":
    main()
