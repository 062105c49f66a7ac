"""Discriminative learning rates: fine-tune a pretrained network extended with a new head.

1. Pretrain an MLP (two hidden layers + a 10-way head) on 800 digits.
2. Extend it for a new task, "digit mod 3", with a new 3-way head, and fine-tune
   it on only 60 labelled examples.
3. Compare four ways to fine-tune, with the same Adam rate and steps: train a
   fresh network from scratch, train the extended one with one rate for every
   layer, freeze the pretrained body (train the head only), and
   **discriminative rates**: the rate spread geometrically from 1/10 of it for
   the first layer to all of it for the new head (fastai's
   ``lr_max=slice(lr / 10, lr)``): ``lrjax.layer_multipliers`` gives the
   multipliers and ``lrjax.scale_by_layer``, chained after Adam, applies them
   by regex on the parameter path (``"body/0/w"``, ``"head/b"``, ...). The
   frozen body is the same transform with multiplier 0 for the body.

Each strategy is run on six different draws of the 60 examples (vmapped) and
scored on 500 held-out digits, so the printed means come with their spread.

Run:  python examples/discriminative_finetune.py      (LRJAX_EXAMPLE_FAST=1: shorter)
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
PRETRAIN_STEPS = 150 if FAST else 300
FINETUNE_STEPS = 100 if FAST else 200
DRAWS = 3 if FAST else 6  # different draws of the fine-tuning examples
N_FINETUNE = 60
LR = 1e-2


def init(key: jax.Array, n_out: int) -> dict:
    """A body of two 64-wide ReLU layers and a linear head."""
    k_body, k_head = jax.random.split(key)
    return {
        "body": data.init_mlp(k_body, (64, 64, 64)),
        "head": data.init_mlp(k_head, (64, n_out))[0],
    }


def apply(params: dict, x: jax.Array) -> jax.Array:
    for layer in params["body"]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params["head"]["w"] + params["head"]["b"]


def loss_fn(params: dict, batch) -> jax.Array:
    x, labels = batch
    return optax.softmax_cross_entropy_with_integer_labels(apply(params, x), labels).mean()


def train(optimizer, params, batches):
    def step(carry, batch):
        params, state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), batches)
    return params, losses


def main() -> None:
    X, y = data.load_digits()
    order = np.random.default_rng(0).permutation(len(X))
    test, pretrain, pool = order[:500], order[500:1300], order[1300:]

    # 1. Pretraining on the 10 digit classes.
    pre_batches = data.make_batches(X[pretrain], y[pretrain], PRETRAIN_STEPS, 64)
    pretrained, _ = jax.jit(train, static_argnums=0)(
        optax.adam(3e-3), init(jax.random.key(0), 10), pre_batches
    )
    acc = np.mean(np.argmax(apply(pretrained, X[test]), -1) == y[test])
    print(f"pretrained on {len(pretrain)} digits: test accuracy {acc:.3f} (10 classes)")

    # 2. The new task, and one fine-tuning set per draw (stacked for vmap).
    labels = y % 3
    draws = [np.random.default_rng(d).choice(pool, N_FINETUNE, replace=False) for d in range(DRAWS)]
    batches = [
        data.make_batches(X[i], labels[i], FINETUNE_STEPS, 32, seed=d) for d, i in enumerate(draws)
    ]
    batches = jax.tree.map(lambda *b: np.stack(b), *batches)
    heads = jax.vmap(lambda k: init(k, 3)["head"])(jax.random.split(jax.random.key(1), DRAWS))
    extended = {
        "body": jax.tree.map(lambda a: np.stack([a] * DRAWS), pretrained["body"]),
        "head": heads,
    }
    scratch = jax.vmap(lambda k: init(k, 3))(jax.random.split(jax.random.key(2), DRAWS))

    # Layer groups: first layer, second layer, new head; fastai's geometric spread.
    groups = dict(zip(["^body/0/", "^body/1/", "^head/"], lrjax.layer_multipliers(3, 0.1, 1.0)))
    print("discriminative rates:", {p: f"{LR * m:.2g}" for p, m in groups.items()})
    strategies = {
        "from scratch": (optax.adam(LR), scratch),
        "one rate for all layers": (optax.adam(LR), extended),
        "frozen body (head only)": (
            optax.chain(optax.adam(LR), lrjax.scale_by_layer({"^body/": 0.0})),
            extended,
        ),
        "discriminative rates": (
            optax.chain(optax.adam(LR), lrjax.scale_by_layer(groups)),
            extended,
        ),
    }

    # 3. Fine-tune: every strategy on every draw, the draws side by side.
    print(f"\nfine-tuning on {N_FINETUNE} examples of 'digit mod 3', {DRAWS} draws, Adam {LR:g}")
    print(f"{'strategy':26s} {'train loss':>10s} {'test accuracy':>18s}")
    for name, (optimizer, start) in strategies.items():
        run = jax.jit(jax.vmap(lambda p, b, opt=optimizer: train(opt, p, b)))
        params, losses = run(start, batches)
        accs = [
            np.mean(
                np.argmax(apply(jax.tree.map(lambda a, d=d: a[d], params), X[test]), -1)
                == labels[test]
            )
            for d in range(DRAWS)
        ]
        loss = np.mean(losses[:, -10:])
        print(f"{name:26s} {loss:10.4f} {np.mean(accs):10.3f} ± {np.std(accs):.3f}")


if __name__ == "__main__":
    main()
