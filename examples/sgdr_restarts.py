"""SGDR: cosine annealing with warm restarts (Loshchilov & Hutter 2017).

Trains an MLP on the scikit-learn digits with SGD + momentum under
``lrjax.cosine_restarts``: cycles of 30, 60, 120 and 240 steps, each annealed
from 0.1 down to 1e-4. At the end of every cycle, where the rate is lowest, the
model is evaluated: each cycle ends at a better model than the last, and each
end is a usable checkpoint. The plot shows the rate and the training loss, which
rises after each restart and then falls lower than before.

Run:  python examples/sgdr_restarts.py       (writes sgdr_restarts.png)
Needs: pip install -e ".[demo]"
"""

from __future__ import annotations

import itertools
import os

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import lrjax

FAST = os.environ.get("LRJAX_EXAMPLE_FAST") == "1"
PERIOD = 10 if FAST else 30  # the first cycle; each next one is twice as long
CYCLES = 3 if FAST else 4
BATCH = 64
OUT = "sgdr_restarts.png"


def init_mlp(key: jax.Array, sizes: tuple[int, ...]) -> list[dict[str, jax.Array]]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"w": jax.random.normal(k, (a, b)) * jnp.sqrt(2.0 / a), "b": jnp.zeros(b)}
        for k, (a, b) in zip(keys, itertools.pairwise(sizes))
    ]


def predict(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def loss_fn(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(predict(params, x), y).mean()


def main() -> None:
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )

    schedule = lrjax.cosine_restarts(init_value=0.1, period=PERIOD, period_mult=2, end_value=1e-4)
    cycle_ends = np.cumsum([PERIOD * 2**i for i in range(CYCLES)])  # 30, 90, 210, 450
    total_steps = int(cycle_ends[-1])
    print(f"{schedule}: cycles end at steps {cycle_ends.tolist()}")

    optimizer = optax.sgd(learning_rate=schedule, momentum=0.9)
    params = init_mlp(jax.random.key(0), (64, 128, 10))
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(0)
    batches = rng.integers(0, len(X_train), size=(total_steps, BATCH))
    losses, accuracies = [], []
    for t in range(total_steps):
        idx = batches[t]
        params, opt_state, loss = step(params, opt_state, X_train[idx], y_train[idx])
        losses.append(float(loss))
        if t + 1 in cycle_ends:
            acc = np.mean(np.argmax(predict(params, X_test), -1) == y_test)
            accuracies.append(acc)
            print(
                f"cycle {len(accuracies)} ends at step {t + 1:4d}: rate {float(schedule(t)):.1e}, "
                f"train loss {np.mean(losses[-10:]):.4f}, test accuracy {acc:.3f}"
            )

    steps = np.arange(total_steps)
    fig, (ax_lr, ax_loss) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, layout="constrained")
    ax_lr.plot(steps, schedule(steps), color="#3f51b5")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_title(repr(schedule), fontsize=8, family="monospace", loc="left")
    ax_loss.plot(steps, losses, color="#9e9e9e", linewidth=0.8, label="batch loss")
    smooth = np.convolve(losses, np.ones(10) / 10, mode="valid")
    ax_loss.plot(steps[9:], smooth, color="#e65100", label="10-step mean")
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_xlabel("step")
    ax_loss.legend()
    for ax in (ax_lr, ax_loss):
        for end in cycle_ends[:-1]:
            ax.axvline(end, color="k", linestyle=":", linewidth=0.8)
        ax.grid(alpha=0.3)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
