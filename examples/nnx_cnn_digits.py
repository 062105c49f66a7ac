"""Range test on a Flax NNX CNN with BatchNorm and Dropout, then train at its rate.

A small CNN on the 8x8 scikit-learn digits. ``lrjax.range_test`` trains one
copy of it per rate (SGD with Nesterov momentum), side by side with
``jax.vmap``: each copy trains in train mode (BatchNorm on batch statistics
and updating its running averages, Dropout drawing its own masks) and is
scored in eval mode on held-out validation digits. The batches come from a
plain NumPy generator (any iterable of batches of arrays works the same
way). ``result.suggest_for(T, schedule=...)`` turns the rate with the lowest
validation loss into the peak of a warmup + cosine schedule for a run of
``T`` steps, which then trains the model.

Run:  python examples/nnx_cnn_digits.py [--fast]   (or LRJAX_EXAMPLE_FAST=1)
Needs: pip install -e ".[demo]" flax
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import lrjax
from lrjax import data

BATCH = 64


class CNN(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs, width: int = 16, dropout: float = 0.2):
        # No bias before a BatchNorm: it would subtract it again.
        self.conv1 = nnx.Conv(1, width, (3, 3), use_bias=False, rngs=rngs)
        self.bn1 = nnx.BatchNorm(width, rngs=rngs)
        self.conv2 = nnx.Conv(width, 2 * width, (3, 3), strides=2, use_bias=False, rngs=rngs)
        self.bn2 = nnx.BatchNorm(2 * width, rngs=rngs)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.head = nnx.Linear(4 * 4 * 2 * width, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:  # x: [B, 8, 8, 1]
        x = nnx.relu(self.bn1(self.conv1(x)))
        x = nnx.relu(self.bn2(self.conv2(x)))  # [B, 4, 4, 2 * width]
        return self.head(self.dropout(x.reshape(x.shape[0], -1)))


def loss_fn(model: CNN, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    x, y = batch
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def batch_stream(X: np.ndarray, y: np.ndarray, seed: int) -> Iterator[tuple[np.ndarray, ...]]:
    """Endless shuffled minibatches, like a data loader (the last partial batch dropped)."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(X))
        for i in range(len(X) // BATCH):
            idx = order[i * BATCH : (i + 1) * BATCH]
            yield X[idx], y[idx]


def split_batches(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whole batches stacked ``[n, BATCH, ...]``, for evaluation."""
    n = len(X) // BATCH
    return X[: n * BATCH].reshape(n, BATCH, *X.shape[1:]), y[: n * BATCH].reshape(n, BATCH)


def evaluate(model: CNN, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    model.eval()  # BatchNorm on its running averages, no Dropout
    logits = model(jnp.asarray(X))
    model.train()
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return float(loss), float(jnp.mean(jnp.argmax(logits, -1) == y))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="a quick run (well under a minute)")
    fast = ap.parse_args().fast or os.environ.get("LRJAX_EXAMPLE_FAST") == "1"
    num_lrs, test_steps = (8, 40) if fast else (16, 100)
    train_steps = 150 if fast else 1000

    X, y = data.load_digits()
    X = X.reshape(-1, 8, 8, 1)
    order = np.random.default_rng(0).permutation(len(X))
    test, val, fit = order[:400], order[400:656], order[656:]  # 400 / 256 / 1141

    model = CNN(rngs=nnx.Rngs(0))
    # Heavy-ball methods want a momentum term; the rate is the only thing swept.
    sgd = lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True)

    # 1. The range test. The generator is consumed for `test_steps` batches;
    #    validation batches are stacked (they are re-used for every copy).
    result = lrjax.range_test(
        loss_fn,
        model,
        batch_stream(X[fit], y[fit], seed=1),
        optimizer=sgd,
        min_lr=1e-3,
        max_lr=30.0,
        num_lrs=num_lrs,
        num_steps=test_steps,
        val_batches=split_batches(X[val], y[val]),
        progress=False,
    )
    window = max(1, test_steps // 10)
    train_score = result.losses[0, :, -window:].mean(-1)  # NaN once diverged
    print(f"range test: {num_lrs} rates x {test_steps} steps, SGD+Nesterov momentum 0.9")
    print(f"{'rate':>9}  {'train loss':>10}  {'val loss':>8}  status")
    for lr, tr, vl, status in zip(result.lrs, train_score, result.val_losses[0], result.status):
        print(f"{lr:9.3g}  {tr:10.4f}  {vl:8.4f}  {status}")
    print(f"best rate: {result.best_lr:.4g} (lowest validation loss after {test_steps} steps)")
    # The real run is longer than the test: the best constant rate for it is
    # lower, about in proportion (benchmarks/README.md), which suggest_for says.
    rate = result.suggest_for(train_steps)
    print(f"suggested rate: {rate:.4g} (suggest_for({train_steps}))")
    # The run decays its rate: warmup (5%) into a cosine decay. Its peak is the
    # constant rate over the schedule's mean relative to its peak, so that the
    # run's mean rate matches it: suggest_for with the schedule's shape says so.
    warm = train_steps // 20
    shape = lrjax.warmup(lrjax.cosine(1.0, steps=train_steps - warm), steps=warm)
    peak = result.suggest_for(train_steps, schedule=shape)
    print(f"schedule peak: {peak:.4g} (suggest_for({train_steps}, schedule=warmup + cosine))")

    # 2. Train on that schedule, peaking at `peak`, with the same optimizer.
    schedule = shape * peak
    optimizer = nnx.Optimizer(model, sgd(schedule), wrt=nnx.Param)

    @nnx.jit
    def step(model: CNN, optimizer: nnx.Optimizer, batch) -> jax.Array:
        loss, grads = nnx.value_and_grad(loss_fn)(model, batch)
        optimizer.update(model, grads)
        return loss

    init_val, _ = evaluate(model, X[val], y[val])
    stream = batch_stream(X[fit], y[fit], seed=2)
    losses = [float(step(model, optimizer, next(stream))) for _ in range(train_steps)]
    val_loss, val_acc = evaluate(model, X[val], y[val])
    test_loss, test_acc = evaluate(model, X[test], y[test])
    print(f"\n{train_steps} steps, warmup + cosine peaking at {peak:.4g}:")
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    print(f"train loss: first 10 steps {first:.4f}, last 10 {last:.4f}")
    print(f"initial validation loss: {init_val:.4f}")
    print(f"final validation loss: {val_loss:.4f} (accuracy {val_acc:.3f})")
    print(f"final test loss: {test_loss:.4f} (accuracy {test_acc:.3f})")


if __name__ == "__main__":
    main()
