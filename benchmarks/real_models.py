"""The range test on real models (an NNX CNN, a Transformer LM) vs K sequential jitted runs.

Workloads (the models of ``examples/nnx_cnn_digits.py`` and
``examples/transformer_lm.py``, at benchmark sizes):

* **cnn**: two 3x3 convolutions with BatchNorm, Dropout, a linear head, on the
  8x8 digits, batch 64, SGD with Nesterov momentum;
* **transformer**: a byte-level pre-LN Transformer (2 layers, width 64, 4
  heads, context 64, dropout), batch 16, on the standard library's sources,
  AdamW.

For each K (``--ks``), side by side in one run:

* **range test**: ``lrjax.range_test`` with ``num_lrs=K`` (one
  ``jit(vmap(scan))`` of K copies, with BatchNorm statistics and RNG streams
  carried per copy, divergence checks and smoothing);
* **K sequential runs**: what one writes without lrjax: ``jax.jit`` of a
  ``lax.scan`` training one copy at one rate (NNX split/merge, the same
  optimizer), compiled once (the rate is an argument), called K times;
* **hand-written jit(vmap(scan))**: that same one-copy program vmapped over
  the K rates, each copy with its own model state (BatchNorm statistics, RNG
  state), without lrjax's bookkeeping (divergence checks, loss smoothing,
  freezing): what vmap itself costs or saves, apart from the engine.

"first call" is the first call with fresh functions (tracing and compilation
included, "of which compile" from JAX's own compile events); "steady" is the
median of ``--repeats`` calls after it, interleaved (ABAB...) so that load
changes on a shared machine hit every method alike. The ratio is method /
range test, steady: above 1 means the range test is faster. Memory comes from XLA's
analysis of the compiled programs (arguments + outputs + temporaries): the
range test's program for 4 and 8 copies (the difference over 4 is one copy's
cost: parameters, optimizer and model state, activations of one step), and a
sequential run's whole program. GFLOP/s count XLA's FLOP estimate of one
training step of one copy (forward and backward; the optimizer's few FLOPs
per parameter left out) times the steps and K, against the f32 matmul peak
measured in the same run.

    python benchmarks/real_models.py [--ks 8,16] [--steps 20] [--repeats 3]
                                     [--dtype float32|bfloat16] [--workloads cnn,transformer]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import compile_seconds, interleaved, load_note, machine_info, matmul_peak, table
from flax import nnx

import lrjax
from lrjax import _engine, data
from lrjax._range_test import ConstantRate

# ------------------------------------------------------------------ workloads


class CNN(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs, width: int = 16, dtype=jnp.float32):
        conv = lambda i, o, **kw: nnx.Conv(
            i, o, (3, 3), use_bias=False, dtype=dtype, rngs=rngs, **kw
        )
        self.conv1, self.bn1 = conv(1, width), nnx.BatchNorm(width, dtype=dtype, rngs=rngs)
        self.conv2 = conv(width, 2 * width, strides=2)
        self.bn2 = nnx.BatchNorm(2 * width, dtype=dtype, rngs=rngs)
        self.dropout = nnx.Dropout(0.2, rngs=rngs)
        self.head = nnx.Linear(32 * width, 10, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.bn1(self.conv1(x)))
        x = nnx.relu(self.bn2(self.conv2(x)))
        return self.head(self.dropout(x.reshape(x.shape[0], -1)))


def cnn_loss(model, batch):
    x, y = batch
    logits = model(x).astype(jnp.float32)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


class Block(nnx.Module):
    def __init__(self, d, heads, *, rngs, dtype):
        self.ln1 = nnx.LayerNorm(d, dtype=dtype, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(
            heads, d, dropout_rate=0.1, deterministic=False, decode=False, dtype=dtype, rngs=rngs
        )
        self.ln2 = nnx.LayerNorm(d, dtype=dtype, rngs=rngs)
        self.up = nnx.Linear(d, 4 * d, dtype=dtype, rngs=rngs)
        self.down = nnx.Linear(4 * d, d, dtype=dtype, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)

    def __call__(self, x, mask):
        x = x + self.dropout(self.attn(self.ln1(x), mask=mask))
        return x + self.dropout(self.down(nnx.gelu(self.up(self.ln2(x)))))


class ByteLM(nnx.Module):
    def __init__(self, d=64, heads=4, layers=2, seq=64, *, rngs, dtype=jnp.float32):
        self.embed = nnx.Embed(256, d, dtype=dtype, rngs=rngs)
        self.pos = nnx.Embed(seq, d, dtype=dtype, rngs=rngs)
        self.blocks = nnx.List([Block(d, heads, rngs=rngs, dtype=dtype) for _ in range(layers)])
        self.ln = nnx.LayerNorm(d, dtype=dtype, rngs=rngs)
        self.head = nnx.Linear(d, 256, dtype=dtype, rngs=rngs)

    def __call__(self, tokens):
        x = self.embed(tokens) + self.pos(jnp.arange(tokens.shape[-1]))
        mask = nnx.make_causal_mask(tokens)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln(x))


def lm_loss(model, batch):
    logits = model(batch[:, :-1]).astype(jnp.float32)
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch[:, 1:]).mean()


def workload(name: str, steps: int, dtype):
    """``(description, model, loss_fn, batches, optimizer, min_lr, max_lr)``."""
    rngs = nnx.Rngs(0)
    if name == "cnn":
        X, y = data.load_digits()
        xs, ys = data.make_batches(X.reshape(-1, 8, 8, 1), y, num_steps=steps, batch_size=64)
        return (
            "NNX CNN (conv 16, conv 32, BatchNorm, Dropout), digits 8x8, batch 64, SGD+Nesterov",
            CNN(rngs=rngs, dtype=dtype),
            cnn_loss,
            (xs, ys),
            lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
            1e-3,
            30.0,
        )
    stdlib = Path(os.__file__).parent
    names = ("argparse.py", "calendar.py", "dataclasses.py", "functools.py", "textwrap.py")
    text = b"".join((stdlib / n).read_bytes() for n in names)
    tokens = np.frombuffer(text, np.uint8).astype(np.int32)
    starts = np.random.default_rng(0).integers(0, len(tokens) - 65, (steps, 16))
    return (
        "NNX byte Transformer (pre-LN, 2 layers, d 64, 4 heads, context 64, dropout), "
        "batch 16, AdamW",
        ByteLM(rngs=rngs, dtype=dtype),
        lm_loss,
        tokens[starts[..., None] + np.arange(65)],
        lambda lr: optax.adamw(lr, weight_decay=0.1),
        1e-4,
        1.0,
    )


# ---------------------------------------------------------- the two methods


def sequential_program(model, loss_fn, optimizer):
    """``jit(train_one)``: one copy at rate ``lr`` over all batches, a ``lax.scan``."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def train_one(lr, params, rest, batches):
        tx = optimizer(lr)

        def step(carry, batch):
            p, r, s = carry

            def f(p):
                m = nnx.merge(graphdef, p, r, copy=True)
                return loss_fn(m, batch), nnx.split(m, nnx.Param, ...)[2]

            (loss, r), g = jax.value_and_grad(f, has_aux=True)(p)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), r, s), loss

        return jax.lax.scan(step, (params, rest, tx.init(params)), batches)[1]

    return train_one, params, rest


def step_flops(model, loss_fn, batch) -> float:
    """XLA's FLOP count of one forward + backward pass of ``loss_fn`` on ``batch``."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    loss = lambda p, r, b: loss_fn(nnx.merge(graphdef, p, r, copy=True), b)
    cost = jax.jit(jax.grad(loss)).lower(params, rest, batch).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


def range_test_bytes(loss_fn, model, batches, optimizer, lrs, steps, chunks) -> list[int]:
    """Bytes of the range test's own compiled program for each chunk size in ``chunks``.

    The engine's in-memory program for that many copies, compiled as
    ``chunk_size="auto"`` does (``lrjax._engine.compile_program``); private API.
    """
    prepared = _engine.prepare(loss_fn, model, batches)
    make_tx = ConstantRate(optimizer)
    hparams = np.asarray(lrs, np.float32)
    compile_for = lambda c: _engine.compile_program(prepared, make_tx, hparams, c, steps)
    return [_engine.program_bytes(compile_for(c)) for c in chunks]


#: The chunk sizes whose compiled programs give the memory per copy (the difference).
MEMORY_CHUNKS = (4, 8)


def mib(b: float) -> str:
    return f"{b / 2**20:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", default="8,16", help="numbers of rates, comma-separated")
    ap.add_argument("--steps", type=int, default=20, help="training steps per copy")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    ap.add_argument("--workloads", default="cnn,transformer")
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    T, dtype = args.steps, jnp.dtype(args.dtype)

    print(machine_info())
    print(f"flax {flax.__version__}; start: {load_note()}")
    peak, peak_n = matmul_peak()
    print(f"f32 matmul peak measured now: {peak:.0f} GFLOP/s (n = {peak_n})")
    print(f"{T} steps per copy, compute dtype {args.dtype} (parameters float32)\n")

    rows, mem_rows = [], []
    for name in args.workloads.split(","):
        desc, model, loss_fn, batches, optimizer, lo, hi = workload(name, T, dtype)
        n_params = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
        print(f"{name}: {desc}, {n_params} parameters", flush=True)

        train_one, params, rest = sequential_program(model, loss_fn, optimizer)
        dev_batches = jax.device_put(batches)
        lr0 = jnp.float32(lo)
        t0 = time.perf_counter()
        compiled = jax.jit(train_one).lower(lr0, params, rest, dev_batches).compile()
        seq_compile = time.perf_counter() - t0
        # XLA's cost analysis counts a loop body once, whatever its trip count, and
        # inside the training loop it missed the backward pass: count one step's
        # forward + backward on its own (the optimizer's few FLOPs per parameter
        # left out), times the steps.
        flops_one = T * step_flops(model, loss_fn, jax.tree.map(lambda a: a[0], batches))
        seq_bytes = _engine.program_bytes(compiled)
        print(f"  XLA FLOP estimate: {flops_one / T / 1e9:.3f} GFLOP per copy-step", flush=True)

        for K in ks:
            lrs = np.geomspace(lo, hi, K).astype(np.float32)
            lr_dev = [jnp.float32(lr) for lr in lrs]
            # Model state (BatchNorm statistics, RNG keys) per copy, as in the engine:
            # shared, XLA would draw one dropout mask for all copies.
            rests = jax.tree.map(lambda a: jnp.broadcast_to(a, (K, *a.shape)), rest)
            t0 = time.perf_counter()
            vmapped = (
                jax.jit(jax.vmap(train_one, in_axes=(0, None, 0, None)))
                .lower(jnp.asarray(lrs), params, rests, dev_batches)
                .compile()
            )
            vmap_compile = time.perf_counter() - t0

            def range_test(fn=loss_fn):
                r = lrjax.range_test(
                    fn, model, batches, optimizer, min_lr=lo, max_lr=hi, num_lrs=K, num_steps=T,
                    progress=False,
                )  # fmt: skip
                return r.losses

            methods = {
                "lrjax.range_test": range_test,
                "K sequential jit(scan) runs": lambda: [
                    compiled(lr, params, rest, dev_batches) for lr in lr_dev
                ],
                "hand-written jit(vmap(scan))": lambda: vmapped(
                    jnp.asarray(lrs), params, rests, dev_batches
                ),
            }
            # First calls. A fresh loss function makes the range test trace and
            # compile anew (JAX's compile events time that part); the other two
            # were compiled ahead of time above, and that time is added.
            first, compile_s = {}, {}
            fresh = lambda m, b: loss_fn(m, b)
            with compile_seconds() as c:
                t0 = time.perf_counter()
                jax.block_until_ready(range_test(fresh))
                first["lrjax.range_test"] = time.perf_counter() - t0
            compile_s["lrjax.range_test"] = c[0]
            for name_m, ahead in (
                ("K sequential jit(scan) runs", seq_compile),
                ("hand-written jit(vmap(scan))", vmap_compile),
            ):
                t0 = time.perf_counter()
                jax.block_until_ready(methods[name_m]())
                first[name_m] = time.perf_counter() - t0 + ahead
                compile_s[name_m] = ahead
            steady = interleaved(methods, repeats=args.repeats)
            ref = steady["lrjax.range_test"]
            for m, t in steady.items():
                gflops = flops_one * K / t / 1e9
                rows.append(
                    [name, K, m, f"{first[m]:.2f}", f"{compile_s[m]:.2f}", f"{t:.3f}",
                     f"{1e3 * t / (K * T):.2f}", f"**{t / ref:.2f}x**",
                     f"{gflops:.2f} ({100 * gflops / peak:.1f}%)"]
                )  # fmt: skip
            print(
                f"  K={K}: "
                + ", ".join(f"{m} {t:.3f} s" for m, t in steady.items())
                + f" ({load_note()})",
                flush=True,
            )

        lo_c, hi_c = MEMORY_CHUNKS
        b_lo, b_hi = range_test_bytes(loss_fn, model, batches, optimizer, lrs, T, MEMORY_CHUNKS)
        per_copy = (b_hi - b_lo) / (hi_c - lo_c)
        param_bytes = n_params * 4
        mem_rows.append(
            [name, n_params, mib(param_bytes), mib(b_lo), mib(b_hi), mib(per_copy),
             f"{per_copy / param_bytes:.1f}", mib(seq_bytes)]
        )  # fmt: skip

    print()
    print(
        table(
            rows,
            ["workload", "K", "method", "first call s", "of which compile", "steady s",
             "ms per copy-step", "steady / range test", "GFLOP/s (% of f32 peak)"],
        )
    )  # fmt: skip
    print()
    print(
        table(
            mem_rows,
            ["workload", "parameters", "params MiB", f"range test MiB, {lo_c} copies",
             f"{hi_c} copies", "MiB per copy", "per copy / params", "one sequential run MiB"],
        )
    )  # fmt: skip
    print(f"\nend: {load_note()}")


if __name__ == "__main__":
    main()
