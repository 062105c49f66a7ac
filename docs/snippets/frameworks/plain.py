import jax
import jax.numpy as jnp
import optax

import lrjax
from lrjax import data


def init(key):
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (64, 32)) / 8.0,
        "b1": jnp.zeros(32),
        "w2": jax.random.normal(k2, (32, 10)) / jnp.sqrt(32.0),
        "b2": jnp.zeros(10),
    }


def loss_fn(params, batch, key):  # key: a PRNG key per copy and step; None to evaluate
    x, y = batch
    h = jax.nn.relu(x @ params["w1"] + params["b1"])
    if key is not None:  # dropout, rate 0.2
        h = jnp.where(jax.random.bernoulli(key, 0.8, h.shape), h / 0.8, 0.0)
    logits = h @ params["w2"] + params["b2"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


X, y = data.load_digits()
train = (X[:320].reshape(10, 32, 64), y[:320].reshape(10, 32))
val = (X[1500:1564].reshape(2, 32, 64), y[1500:1564].reshape(2, 32))

result = lrjax.range_test(
    loss_fn,
    init(jax.random.key(0)),
    train,
    min_lr=1e-3,
    max_lr=1.0,
    num_lrs=4,
    num_steps=10,
    val_batches=val,
    key=jax.random.key(42),  # same key, same numbers; each copy draws its own masks
    progress=False,
)
print("val losses:", result.val_losses.shape)
