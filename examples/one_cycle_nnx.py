"""One-cycle training of a Flax NNX MLP on the scikit-learn digits.

The learning rate follows ``lrjax.one_cycle`` and Adam's ``b1`` follows
``lrjax.one_cycle_momentum`` (fastai's ``fit_one_cycle``): both are plain Optax
schedules, handed to ``optax.inject_hyperparams`` so the optimizer state carries
the values in force, which the loop prints.

Run:  python examples/one_cycle_nnx.py      (LRJAX_EXAMPLE_FAST=1 for a quick run)
Needs: pip install -e ".[demo]" flax
"""

from __future__ import annotations

import itertools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import lrjax

FAST = os.environ.get("LRJAX_EXAMPLE_FAST") == "1"
EPOCHS = 3 if FAST else 12
BATCH = 64


class MLP(nnx.Module):
    def __init__(self, sizes: tuple[int, ...], *, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)])

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers[:-1]:
            x = nnx.relu(layer(x))
        return self.layers[-1](x)


def load() -> tuple[np.ndarray, ...]:
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def loss_fn(model: MLP, x: jax.Array, y: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


@nnx.jit
def train_step(model: MLP, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def accuracy(model: MLP, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(model(x), axis=-1) == y)


def main() -> None:
    X_train, X_test, y_train, y_test = load()
    steps_per_epoch = len(X_train) // BATCH
    total_steps = EPOCHS * steps_per_epoch

    lr = lrjax.one_cycle(max_value=1e-2, total_steps=total_steps)
    momentum = lrjax.one_cycle_momentum(total_steps=total_steps)
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=momentum)

    model = MLP((64, 128, 128, 10), rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    print(f"one_cycle over {total_steps} steps ({EPOCHS} epochs of {steps_per_epoch}): {lr}")
    print("epoch  train_loss  test_acc  lr_at_end  b1_at_end")
    rng = np.random.default_rng(0)
    for epoch in range(1, EPOCHS + 1):
        order = rng.permutation(len(X_train))
        losses = []
        for i in range(steps_per_epoch):
            idx = order[i * BATCH : (i + 1) * BATCH]
            losses.append(train_step(model, optimizer, X_train[idx], y_train[idx]))
        hp = optimizer.opt_state.hyperparams
        acc = accuracy(model, X_test, y_test)
        print(
            f"{epoch:5d}  {float(np.mean(losses)):10.4f}  {float(acc):8.3f}"
            f"  {float(hp['learning_rate']):9.2e}  {float(hp['b1']):9.3f}"
        )
    print(f"final test accuracy: {float(accuracy(model, X_test, y_test)):.3f}")


if __name__ == "__main__":
    main()
