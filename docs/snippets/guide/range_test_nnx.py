import numpy as np
import optax
from flax import nnx

import lrjax
from lrjax import data


class Net(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(64, 128, use_bias=False, rngs=rngs)
        self.norm = nnx.BatchNorm(128, rngs=rngs)
        self.dropout = nnx.Dropout(0.3, rngs=rngs)
        self.out = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(self.dropout(nnx.relu(self.norm(self.hidden(x)))))


def loss_fn(model, batch):
    x, y = batch
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def loader(X, y, batch_size=64, seed=0):
    """Shuffled minibatches forever: an iterable of batches of arrays, as a loader gives."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(X))
        for i in range(len(X) // batch_size):
            idx = order[i * batch_size : (i + 1) * batch_size]
            yield X[idx], y[idx]


X, y = data.load_digits()
X_train, y_train, X_val, y_val = X[:1500], y[:1500], X[1500:], y[1500:]
model = Net(nnx.Rngs(0))  # in train mode: BatchNorm on batch statistics, Dropout on

result = lrjax.range_test(
    loss_fn,
    model,  # each copy carries its own BatchNorm statistics and dropout stream
    loader(X_train, y_train),  # the first num_steps batches are used
    optimizer=optax.adam,
    min_lr=1e-4,
    max_lr=10.0,
    num_lrs=16,
    num_steps=60,
    val_batches=[(X_val, y_val)],  # scored in eval mode after the last step
    progress=False,
)
print(result)
print("rate      val loss  status")
for lr, val, status in zip(result.lrs[::3], result.val_losses[0, ::3], result.status[::3]):
    print(f"{lr:8.2g}  {val:8.4f}  {status}")
print(f"best_lr = {result.best_lr:.3g} (lowest validation loss after 60 steps)")
print(f"suggest() = {result.suggest():.3g} (best_lr / 3: for a run 3x as long)")
print(f"suggest_for(1_000) = {result.suggest_for(1_000):.3g}")
result.plot()
