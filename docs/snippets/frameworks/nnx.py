from functools import partial

import numpy as np
import optax
from flax import nnx

import lrjax
from lrjax import data


class CNN(nnx.Module):
    """The Flax MNIST tutorial's CNN, shrunk for 8x8 digits."""

    def __init__(self, *, dropout: float = 0.25, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 8, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm1 = nnx.BatchNorm(8, rngs=rngs)
        self.dropout1 = nnx.Dropout(rate=dropout)
        self.avg_pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.linear1 = nnx.Linear(4 * 4 * 8, 32, rngs=rngs)
        self.dropout2 = nnx.Dropout(rate=dropout)
        self.linear2 = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x, rngs: nnx.Rngs | None = None):
        x = self.avg_pool(nnx.relu(self.batch_norm1(self.conv1(x))))
        x = x.reshape(x.shape[0], -1)
        x = self.dropout1(x, rngs=rngs)
        x = nnx.relu(self.linear1(x))
        x = self.dropout2(x, rngs=rngs)
        return self.linear2(x)


def loss_fn(model: CNN, batch, rngs: nnx.Rngs):  # rngs: lrjax passes an nnx.Rngs
    logits = model(batch["image"], rngs)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
    return loss, logits


X, y = data.load_digits()
images = X.reshape(-1, 8, 8, 1)
train = {"image": images[:320].reshape(10, 32, 8, 8, 1), "label": y[:320].reshape(10, 32)}
val = {"image": images[1500:1564].reshape(2, 32, 8, 8, 1), "label": y[1500:1564].reshape(2, 32)}

model = CNN(rngs=nnx.Rngs(0))
train_model = nnx.view(model, deterministic=False, use_running_average=False)

result = lrjax.range_test(
    loss_fn,
    train_model,  # trains in this view; evaluated with deterministic / running averages
    train,  # 10 steps of 32 images
    optimizer=optax.adam,
    min_lr=1e-3,
    max_lr=1.0,
    num_lrs=4,
    num_steps=10,
    has_aux=True,  # loss_fn returns (loss, logits): result.aux holds the logits
    val_batches=val,
    progress=False,
)
print("rates:", np.round(result.lrs, 3))
print("aux (logits):", result.aux.shape)  # [seeds, rates, steps, batch, classes]
print("first-step losses:", np.round(result.losses[0, :, 0], 2))
