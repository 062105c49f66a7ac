"""Tune one-cycle's peak and warmup and AdamW's weight decay for an NNX CNN.

``lrjax.tune`` trains a population of the CNN from ``nnx_cnn_digits.py``
(BatchNorm, Dropout) side by side in one compiled program, each member with its
own ``one_cycle(lr, pct_start)`` schedule and weight decay. The rate range is
wide, as when the rate is not known: before the search a short rate test (the
run's first steps at up to 16 rates side by side) narrows it to where the CNN
trains. With ``method="pbt"`` (the default is successive halving) the worst
quarter copies the weights and optimizer state of a
member of the best quarter after every round and moves its hyperparameters a
little; members are ranked on held-out digits. PBT's answer is a trained
model: the best member's weights (and BatchNorm statistics), whose schedule
changed along the way, so its final settings alone would not reproduce it.
It is scored on test digits.

Run:  python examples/tune_cnn.py [--fast]   (or LRJAX_EXAMPLE_FAST=1)
Needs: pip install -e ".[demo]" flax
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import optax
from flax import nnx
from nnx_cnn_digits import CNN, batch_stream, evaluate, loss_fn, split_batches

import lrjax
from lrjax import data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="a quick run (well under a minute)")
    fast = ap.parse_args().fast or os.environ.get("LRJAX_EXAMPLE_FAST") == "1"
    population, steps, rounds = (8, 60, 3) if fast else (16, 300, 5)

    X, y = data.load_digits()
    X = X.reshape(-1, 8, 8, 1)
    order = np.random.default_rng(0).permutation(len(X))
    test, val, fit = order[:400], order[400:656], order[656:]  # 400 / 256 / 1141

    def make_optimizer(lr, pct_start, weight_decay):
        # Traced scalars: the whole population shares one compiled program.
        schedule = lrjax.one_cycle(lr, steps, pct_start=pct_start)
        return optax.adamw(schedule, weight_decay=weight_decay)

    space = {
        "lr": ("log", 1e-5, 10.0),  # the dimension named lr is the rate tested
        "pct_start": (0.1, 0.5),
        "weight_decay": ("log", 1e-5, 1e-1),
    }
    result = lrjax.tune(
        loss_fn,
        CNN(rngs=nnx.Rngs(0)),
        batch_stream(X[fit], y[fit], seed=1),
        make_optimizer,
        space,
        population=population,
        num_steps=steps,
        rounds=rounds,
        method="pbt",
        val_batches=split_batches(X[val], y[val]),
        progress=False,
    )
    first = result.history.scores[0]
    print(f"tune (pbt): {population} members x {steps} steps in {rounds} rounds")
    low, high = result.rate_range
    print(f"rate test: lr narrowed from [1e-05, 10] to [{low:.3g}, {high:.3g}]")
    best1, median1 = np.nanmin(first), np.nanmedian(first)
    print(f"validation loss, round 1: best {best1:.4f}, median {median1:.4f}")
    print(f"validation loss, final best member: {result.best_score:.4f}")
    print("best:", ", ".join(f"{k}={v:.3g}" for k, v in result.best.items()))

    # The best member as a model: its trained parameters and model state.
    graphdef, _, _ = nnx.split(CNN(rngs=nnx.Rngs(0)), nnx.Param, ...)
    model = nnx.merge(graphdef, result.params, result.state)
    test_loss, acc = evaluate(model, X[test], y[test])
    print(f"best member on the test digits: loss {test_loss:.4f}, accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
