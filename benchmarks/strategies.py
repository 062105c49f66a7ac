"""The range test's and tune's execution strategies against the user's own training loop.

Workloads:

* **mlp**: the digits MLP of ``lrjax find`` (64-128-10... as ``lrjax.data.mlp_sizes``),
  batch 128, Adam;
* **cnn**: the CNN of Flax's NNX MNIST tutorial (conv 32 + BatchNorm + Dropout +
  average pool, conv 64 + BatchNorm + average pool, dense 256 + Dropout,
  dense 10) on the 8x8 digits, batch 32, AdamW;
* **transformer**: the byte-level Transformer of ``real_models.py``, batch 16, AdamW.

Methods, each training K copies (rates) for S steps, side by side in one run:

* **user loop**: what one writes without lrjax: ``nnx.split`` once, one
  ``jax.jit`` training step with the rate as an argument, dispatched from
  Python, the K models one after another (K x S calls);
* **range test, scan / blocks / auto**: ``lrjax.range_test(num_lrs=K,
  num_steps=S, strategy=...)``;
* **tune, scan / auto**: ``lrjax.tune(method="random", population=K,
  num_steps=S, strategy=...)`` with the rate drawn from the range test's
  range, no rate test and no probe: K members of S steps in one round, the
  same work as the user's loop.

"first" is the first call with fresh functions (tracing and compilation
included); "steady" the median of ``--repeats`` further calls, interleaved
(ABAB...) so that load changes hit every method alike. The ratio is the user
loop's time over the method's: above 1 means the method is faster.

    python benchmarks/strategies.py [--ks 8] [--steps 50] [--repeats 3]
                                    [--workloads mlp,cnn,transformer] [--out FILE]
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import Report, block, interleaved, load_note, machine_info, table
from flax import nnx
from real_models import workload as real_workload

import lrjax
from lrjax import data


class TutorialCNN(nnx.Module):
    """The CNN of Flax's NNX MNIST tutorial, sized for 8x8 inputs (Dropout keeps
    its ``rngs`` from construction)."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm1 = nnx.BatchNorm(32, rngs=rngs)
        self.dropout1 = nnx.Dropout(rate=0.025, rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm2 = nnx.BatchNorm(64, rngs=rngs)
        self.avg_pool = functools.partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.linear1 = nnx.Linear(64 * 2 * 2, 256, rngs=rngs)
        self.dropout2 = nnx.Dropout(rate=0.025, rngs=rngs)
        self.linear2 = nnx.Linear(256, 10, rngs=rngs)

    def __call__(self, x):
        x = self.avg_pool(nnx.relu(self.batch_norm1(self.dropout1(self.conv1(x)))))
        x = self.avg_pool(nnx.relu(self.batch_norm2(self.conv2(x))))
        x = x.reshape(x.shape[0], -1)
        x = self.dropout2(nnx.relu(self.linear1(x)))
        return self.linear2(x)


def classify_loss(model, batch):
    x, y = batch
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def workload(name: str, steps: int):
    """``(description, make_model, loss_fn, batches, optimizer, min_lr, max_lr)``."""
    if name == "mlp":
        X, y = data.load_digits()
        sizes = data.mlp_sizes(X, y)
        batches = data.make_batches(X, y, steps, batch_size=128, seed=0)
        return (
            f"digits MLP {'-'.join(map(str, sizes))}, batch 128, Adam",
            lambda: data.init_mlp(0, sizes),
            data.mlp_loss,
            batches,
            optax.adam,
            1e-5,
            10.0,
        )
    if name == "cnn":
        X, y = data.load_digits()
        xs, ys = data.make_batches(X.reshape(-1, 8, 8, 1), y, num_steps=steps, batch_size=32)
        return (
            "NNX tutorial CNN (conv 32 + BN + Dropout, conv 64 + BN, dense 256), digits 8x8, "
            "batch 32, AdamW",
            lambda: TutorialCNN(rngs=nnx.Rngs(0)),
            classify_loss,
            (xs, ys),
            lambda lr: optax.adamw(lr, weight_decay=1e-4),
            1e-5,
            1.0,
        )
    desc, _, loss_fn, batches, optimizer, lo, hi = real_workload(name, steps, jnp.float32)
    return (
        desc,
        lambda: real_workload(name, steps, jnp.float32)[1],
        loss_fn,
        batches,
        optimizer,
        lo,
        hi,
    )


def user_loop(make_model, loss_fn, optimizer, batches, lrs):
    """``run()``: K models one after another, one jitted step per call (rate an argument)."""
    model = make_model()
    nnx_model = isinstance(model, nnx.Module)
    if nnx_model:
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    else:
        graphdef, params, rest = None, model, ()

    @jax.jit
    def step(params, rest, opt_state, batch, lr):
        def f(p):
            if not nnx_model:
                return loss_fn(p, batch), rest
            m = nnx.merge(graphdef, p, rest, copy=True)
            return loss_fn(m, batch), nnx.split(m, nnx.Param, ...)[2]

        (loss, rest), grads = jax.value_and_grad(f, has_aux=True)(params)
        updates, opt_state = optimizer(lr).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, loss

    n = jax.tree.leaves(batches)[0].shape[0]
    device_batches = [jax.tree.map(lambda x, i=i: x[i], batches) for i in range(n)]

    def run():
        losses = []
        for lr in lrs:
            p, r = params, rest
            s = optimizer(lr).init(p)
            lr = jnp.float32(lr)
            for b in device_batches:
                p, r, s, loss = step(p, r, s, b, lr)
                losses.append(loss)
        return jnp.stack(losses)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="8")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", default="mlp,cnn,transformer")
    parser.add_argument("--out", default=None, help="also write the report to this file")
    args = parser.parse_args()
    out = Report()
    out(f"# range-test strategies vs the user's loop\n\n{machine_info()}; {load_note()}\n")
    rows = []
    for name in args.workloads.split(","):
        for K in (int(k) for k in args.ks.split(",")):
            desc, make_model, loss_fn, batches, optimizer, lo, hi = workload(name, args.steps)
            lrs = np.geomspace(lo, hi, K)
            fns = {"user loop": user_loop(make_model, loss_fn, optimizer, batches, lrs)}
            for strategy in ("scan", "blocks", "auto"):
                fns[f"range test, {strategy}"] = functools.partial(
                    lambda s: lrjax.range_test(
                        loss_fn, make_model(), batches, optimizer, min_lr=lo, max_lr=hi,
                        num_lrs=K, num_steps=args.steps, progress=False, strategy=s,
                    ),
                    strategy,
                )  # fmt: skip
            make = lambda lr, optimizer=optimizer: optimizer(lr)
            for strategy in ("scan", "auto"):
                fns[f"tune, {strategy}"] = functools.partial(
                    lambda s, make=make: lrjax.tune(
                        loss_fn, make_model(), batches, make, {"lr": ("log", lo, hi)},
                        population=K, num_steps=args.steps, method="random", rate=False,
                        cooldown_steps=0, progress=False, strategy=s,
                    ),
                    strategy,
                )  # fmt: skip
            first = {}
            picked = {}
            for label, fn in fns.items():
                start = time.perf_counter()
                result = fn()
                block(result if label == "user loop" else result.losses)
                first[label] = time.perf_counter() - start
                if label.endswith(", auto"):
                    picked[label] = result.strategy
            steady = interleaved(fns, repeats=args.repeats)
            base_first, base_steady = first["user loop"], steady["user loop"]
            for label in fns:
                rows.append(
                    [
                        name,
                        K,
                        label + (f" ({picked[label]})" if label in picked else ""),
                        f"{first[label]:.2f}",
                        f"{steady[label]:.2f}",
                        f"{base_first / first[label]:.2f}x",
                        f"{base_steady / steady[label]:.2f}x",
                    ]
                )
            out(f"{name}: {desc}; K={K}, S={args.steps}")
    out("")
    header = ["workload", "K", "method", "first s", "steady s", "first vs loop", "steady vs loop"]
    out(table(rows, header))
    out.write(args.out)


if __name__ == "__main__":
    main()
