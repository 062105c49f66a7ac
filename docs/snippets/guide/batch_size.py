import jax
import numpy as np
import optax

from lrjax import data

X, y = data.load_digits()
order = np.random.default_rng(0).permutation(len(X))
test, train = order[:400], order[400:]
params0 = data.init_mlp(jax.random.key(0))
optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=0.3, momentum=0.9)


@jax.jit
def step(params, state, batch, lr):
    state.hyperparams["learning_rate"] = lr
    loss, grads = jax.value_and_grad(data.mlp_loss)(params, batch)
    updates, state = optimizer.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss


def run(phases):
    """phases: (epochs, batch size, learning rate), in order."""
    params, state, updates = params0, optimizer.init(params0), 0
    rng = np.random.default_rng(1)
    for epochs, batch_size, lr in phases:
        for _ in range(epochs):
            perm = rng.permutation(train)
            for i in range(len(perm) // batch_size):
                idx = perm[i * batch_size : (i + 1) * batch_size]
                params, state, _ = step(params, state, (X[idx], y[idx]), lr)
                updates += 1
    logits = data.mlp_apply(params, X[test])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y[test]).mean()
    return updates, float(loss), float(np.mean(np.argmax(logits, -1) == y[test]))


runs = {
    "constant: B=32, lr=0.3": [(15, 32, 0.3)],
    "decay the rate: lr 0.3 -> 0.06 -> 0.012": [(5, 32, 0.3), (5, 32, 0.06), (5, 32, 0.012)],
    "grow the batch: B 32 -> 160 -> 800": [(5, 32, 0.3), (5, 160, 0.3), (5, 800, 0.3)],
}
print(f"{'15 epochs of SGD':42s} {'updates':>7s} {'test loss':>9s} {'test acc':>8s}")
results = {}
for name, phases in runs.items():
    updates, loss, acc = results[name] = run(phases)
    print(f"{name:42s} {updates:7d} {loss:9.4f} {acc:8.3f}")

constant, decay, grow = results.values()
assert decay[1] < constant[1] and grow[1] < constant[1]  # both beat the constant rate
assert grow[0] < decay[0] / 2  # growing the batch needs less than half the updates
