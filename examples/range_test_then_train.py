"""Range test, then train with what it found.

1. ``lrjax.range_test`` trains 32 copies of an MLP on the scikit-learn digits,
   one per constant Adam rate from 1e-5 to 10, side by side with ``jax.vmap``,
   and writes the loss-vs-rate plot and the training curves to
   ``range_test_then_train.png``.
2. The rate that trained best becomes the peak of a one-cycle schedule for a
   longer run, compared on held-out digits with Adam's usual default (a
   constant 1e-3) over the same steps.

Run:  python examples/range_test_then_train.py      (LRJAX_EXAMPLE_FAST=1: shorter)
Needs: pip install -e ".[demo]"
"""

from __future__ import annotations

import os

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optax

import lrjax
from lrjax import data

FAST = os.environ.get("LRJAX_EXAMPLE_FAST") == "1"
TEST_STEPS = 50 if FAST else 100  # steps per rate in the range test
TRAIN_STEPS = 150 if FAST else 600  # steps of the real run
OUT = "range_test_then_train.png"


def train(optimizer, params, batches):
    """Trains with ``optimizer`` over all ``batches`` (one jitted scan)."""

    def step(carry, batch):
        params, state = carry
        loss, grads = jax.value_and_grad(data.mlp_loss)(params, batch)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), batches)
    return params, losses


def evaluate(params, X, y) -> tuple[float, float]:
    logits = data.mlp_apply(params, X)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return float(loss), float(np.mean(np.argmax(logits, -1) == y))


def main() -> None:
    X, y = data.load_digits()
    order = np.random.default_rng(0).permutation(len(X))
    test, fit = order[:400], order[400:]
    batches = data.make_batches(X[fit], y[fit], num_steps=TRAIN_STEPS, batch_size=64)
    params = data.init_mlp(jax.random.key(0))

    # 1. The range test, on the first TEST_STEPS batches.
    result = lrjax.range_test(
        data.mlp_loss,
        params,
        jax.tree.map(lambda a: a[:TEST_STEPS], batches),
        optimizer=optax.adam,
        min_lr=1e-5,
        max_lr=10.0,
        num_lrs=32,
        num_steps=TEST_STEPS,
        progress=False,
    )
    print(result)
    print("rate        score  status")
    for lr, score, status in zip(result.lrs[::3], result.scores[::3], result.status[::3]):
        print(f"{lr:9.3g}  {score:7.4f}  {status}")
    peak = result.best_lr
    print(f"best rate after {TEST_STEPS} steps: {peak:.3g}")

    fig, (ax_rate, ax_curves) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    result.plot(ax=ax_rate)
    result.plot_curves(ax=ax_curves)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")

    # 2. Train with it: one-cycle peaking at the best rate, against Adam's default.
    runs = {
        f"one_cycle(max_value={peak:.3g})": optax.adam(lrjax.one_cycle(peak, TRAIN_STEPS)),
        "constant 1e-3 (Adam's default)": optax.adam(1e-3),
    }
    header = f"{TRAIN_STEPS} steps of Adam"
    print(f"\n{header:30s} first-10 loss  last-10 loss  test loss  test acc")
    for name, optimizer in runs.items():
        trained, losses = jax.jit(train, static_argnums=0)(optimizer, params, batches)
        test_loss, acc = evaluate(trained, X[test], y[test])
        print(
            f"{name:30s} {np.mean(losses[:10]):13.4f} {np.mean(losses[-10:]):13.4f}"
            f" {test_loss:10.4f} {acc:9.3f}"
        )


if __name__ == "__main__":
    main()
