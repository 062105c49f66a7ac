"""Range test on a Flax Linen model with BatchNorm (``batch_stats``), then train.

scikit-learn's breast-cancer data (569 tumours, 30 measurements on very
different scales, benign or malignant), fed raw: a BatchNorm layer in front
standardises the features from batch statistics, so the model carries a
mutable ``batch_stats`` collection. ``lrjax.range_test`` takes the Linen
``(module, variables)`` pair with ``loss_fn(apply, batch)``: ``apply`` runs
the module with the copy's parameters and statistics, and
``apply.training`` says whether this is a training step (statistics updated,
Dropout on) or the evaluation on held-out data (running averages, no
Dropout). ``result.suggest_for(T, schedule=...)`` turns the best rate into
the peak of a warmup + cosine schedule for a run of ``T`` steps, trained by a
plain Linen training loop.

Run:  python examples/linen_batchnorm.py [--fast]   (or LRJAX_EXAMPLE_FAST=1)
Needs: pip install -e ".[demo]" flax
"""

from __future__ import annotations

import argparse
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_breast_cancer

import lrjax

BATCH = 32
MIN_LR, MAX_LR = 1e-4, 10.0  # the range test's span


class Classifier(nn.Module):
    hidden: int = 64

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        # Training: normalise with this batch's statistics and update the running
        # averages; evaluation: use the running averages. momentum=0.9 (PyTorch's
        # 0.1) rather than Flax's 0.99: the averages must settle within a short
        # range test, or every copy is scored with half-initial statistics.
        norm = lambda **kw: nn.BatchNorm(use_running_average=not train, momentum=0.9, **kw)
        # No shift or bias in front of a BatchNorm: the next one subtracts it again,
        # so its gradient is rounding noise, which Adam would turn into full steps.
        x = norm(use_bias=False, use_scale=False)(x)  # standardise the raw features
        x = nn.relu(norm()(nn.Dense(self.hidden, use_bias=False)(x)))
        x = nn.Dropout(0.2, deterministic=not train)(x)
        return nn.Dense(1)(x)[:, 0]  # the logit of "malignant"


def bce(logits: jax.Array, y: jax.Array) -> jax.Array:
    return optax.sigmoid_binary_cross_entropy(logits, y).mean()


def loss_fn(apply, batch) -> jax.Array:
    x, y = batch
    return bce(apply(x, train=apply.training), y)


def stack(X: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` minibatches ``([n, BATCH, 30], [n, BATCH])``, reshuffled every epoch."""
    rng, per_epoch = np.random.default_rng(seed), len(X) // BATCH
    order = np.concatenate([rng.permutation(len(X))[: per_epoch * BATCH] for _ in range(n)])
    idx = order[: n * BATCH].reshape(n, BATCH)
    return X[idx], y[idx]


def load() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Raw features and labels, split 345 to train on, 96 to validate, 128 to test."""
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X.astype(np.float32), 1.0 - y.astype(np.float32)  # 1: malignant (sklearn: benign)
    order = np.random.default_rng(0).permutation(len(X))
    parts = {"test": order[:128], "val": order[128:224], "fit": order[224:]}
    return {name: (X[idx], y[idx]) for name, idx in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="a quick run (well under a minute)")
    fast = ap.parse_args().fast or os.environ.get("LRJAX_EXAMPLE_FAST") == "1"
    num_lrs, test_steps = (8, 40) if fast else (16, 100)
    train_steps = 200 if fast else 400  # 345 examples: longer only overfits

    data = load()
    module = Classifier()
    variables = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 30)), train=False)
    val_batches = stack(*data["val"], n=len(data["val"][0]) // BATCH, seed=1)  # each once

    # 1. The range test: Adam, one copy per rate, batch_stats carried per copy.
    result = lrjax.range_test(
        loss_fn,
        (module, variables),
        stack(*data["fit"], n=test_steps, seed=2),
        optimizer=optax.adam,
        min_lr=MIN_LR,
        max_lr=MAX_LR,
        num_lrs=num_lrs,
        num_steps=test_steps,
        val_batches=val_batches,
        progress=False,
    )
    window = max(1, test_steps // 10)
    train_score = result.losses[0, :, -window:].mean(-1)  # NaN once diverged
    print(f"range test: {num_lrs} rates x {test_steps} steps of Adam")
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

    # 2. A plain Linen training loop on that schedule, peaking at `peak`.
    tx = optax.adam(shape * peak)

    @jax.jit
    def step(params, stats, opt_state, batch, key):
        def f(p):
            logits, updates = module.apply(
                {"params": p, "batch_stats": stats},
                batch[0],
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": key},
            )
            return bce(logits, batch[1]), updates["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(f, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, loss

    @jax.jit
    def evaluate(params, stats, X, y):
        logits = module.apply({"params": params, "batch_stats": stats}, X, train=False)
        return bce(logits, y), jnp.mean((logits > 0) == (y > 0.5))

    params, stats = variables["params"], variables["batch_stats"]
    opt_state = tx.init(params)
    keys = jax.random.split(jax.random.PRNGKey(1), train_steps)
    losses = []
    for t, batch in enumerate(zip(*stack(*data["fit"], n=train_steps, seed=3))):
        params, stats, opt_state, loss = step(params, stats, opt_state, batch, keys[t])
        losses.append(float(loss))
    val_loss, val_acc = evaluate(params, stats, *data["val"])
    test_loss, test_acc = evaluate(params, stats, *data["test"])
    print(f"\n{train_steps} steps, warmup + cosine peaking at {peak:.4g}:")
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    print(f"train loss: first 10 steps {first:.4f}, last 10 {last:.4f}")
    print(f"final validation loss: {float(val_loss):.4f} (accuracy {float(val_acc):.3f})")
    print(f"final test loss: {float(test_loss):.4f} (accuracy {float(test_acc):.3f})")


if __name__ == "__main__":
    main()
