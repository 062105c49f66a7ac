"""Reduce the rate on a plateau, and stop early when validation stops improving.

An MLP on the scikit-learn digits, trained with Adam at a deliberately high rate
for an unknown number of epochs:

- ``lrjax.reduce_on_plateau`` is chained after Adam. Every update passes the
  minibatch loss as ``value=loss`` (inside the jitted step); with
  ``accumulation_steps`` set to the number of updates per epoch, the transform
  checks once per epoch on the epoch's mean training loss, and cuts the rate
  by ``factor`` after ``patience + 1`` epochs without a new best (PyTorch's
  ``ReduceLROnPlateau`` stepped once per epoch).
- ``lrjax.callbacks.early_stopping`` watches the validation loss once per epoch
  (Keras' ``EarlyStopping``) and ends training once it has not improved for
  ``patience`` epochs; the parameters of the best epoch are kept (Keras'
  ``restore_best_weights=True``).

Every epoch prints the training and validation loss, the validation accuracy
and the rate in force, read from the optimizer state with
``lrjax.get_learning_rate(state, base_lr=LR)``.

Run:  python examples/plateau_early_stopping.py      (LRJAX_EXAMPLE_FAST=1: fewer epochs)
Needs: pip install -e ".[demo]"
"""

from __future__ import annotations

import os

import jax
import numpy as np
import optax

import lrjax
from lrjax import data

FAST = os.environ.get("LRJAX_EXAMPLE_FAST") == "1"
MAX_EPOCHS = 40 if FAST else 100
BATCH = 64
LR = 0.1  # high for Adam on this model: the loss bounces until the rate comes down


def evaluate(params, X, y) -> tuple[float, float]:
    logits = data.mlp_apply(params, X)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return float(loss), float(np.mean(np.argmax(logits, -1) == y))


def main() -> None:
    X, y = data.load_digits()
    order = np.random.default_rng(0).permutation(len(X))
    test, val, fit = order[:300], order[300:600], order[600:]
    steps_per_epoch = len(fit) // BATCH
    batches = data.make_batches(X[fit], y[fit], MAX_EPOCHS * steps_per_epoch, BATCH)
    batches = jax.tree.map(lambda a: a.reshape(MAX_EPOCHS, steps_per_epoch, *a.shape[1:]), batches)

    optimizer = optax.chain(
        optax.adam(LR),
        lrjax.reduce_on_plateau(
            factor=0.3, patience=2, threshold=0.02, accumulation_steps=steps_per_epoch
        ),
    )
    stopper = lrjax.callbacks.early_stopping(patience=6, min_delta=1e-3)

    @jax.jit
    def train_epoch(params, opt_state, epoch_batches):
        def step(carry, batch):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(data.mlp_loss)(params, batch)
            updates, opt_state = optimizer.update(grads, opt_state, params, value=loss)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), epoch_batches)
        return params, opt_state, losses.mean()

    params = data.init_mlp(jax.random.key(0))
    opt_state = optimizer.init(params)
    stop_state = stopper.init()
    best_params = params
    rate = float(lrjax.get_learning_rate(opt_state, base_lr=LR))
    print(f"Adam {LR:g}, {steps_per_epoch} updates per epoch, at most {MAX_EPOCHS} epochs")
    print("epoch  train loss  val loss  val acc       rate")
    for epoch in range(MAX_EPOCHS):
        epoch_batches = jax.tree.map(lambda a, e=epoch: a[e], batches)
        params, opt_state, train_loss = train_epoch(params, opt_state, epoch_batches)
        val_loss, val_acc = evaluate(params, X[val], y[val])
        stop_state = stopper.update(stop_state, val_loss)
        if int(stop_state.best_step) == epoch and bool(stop_state.has_best):
            best_params = params
        new_rate = float(lrjax.get_learning_rate(opt_state, base_lr=LR))
        note = "  <- rate reduced" if new_rate < rate else ""
        rate = new_rate
        print(
            f"{epoch + 1:5d} {float(train_loss):11.4f} {val_loss:9.4f} {val_acc:8.3f}"
            f" {rate:10.2e}{note}"
        )
        if bool(stop_state.should_stop):
            print(
                f"early stop after epoch {epoch + 1}: no better validation loss for "
                f"{int(stop_state.wait)} epochs"
            )
            break
    else:
        print(f"finished all {MAX_EPOCHS} epochs")

    best_epoch = int(stop_state.best_step) + 1
    test_loss, test_acc = evaluate(best_params, X[test], y[test])
    print(
        f"best epoch {best_epoch}: validation loss {float(stop_state.best):.4f}; "
        f"its parameters on the test set: loss {test_loss:.4f}, accuracy {test_acc:.3f}"
    )


if __name__ == "__main__":
    main()
