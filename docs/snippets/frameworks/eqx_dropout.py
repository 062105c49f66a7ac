import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import lrjax
from lrjax import data


class Net(eqx.Module):
    mlp: eqx.nn.MLP
    dropout: eqx.nn.Dropout

    def __init__(self, key, p=0.2):
        self.mlp = eqx.nn.MLP(64, 10, width_size=32, depth=2, key=key)
        self.dropout = eqx.nn.Dropout(p)

    def __call__(self, x, *, key=None):
        return self.mlp(self.dropout(x, key=key))


def loss_fn(model, batch, key):  # key: lrjax passes a PRNG key per copy and step (None to evaluate)
    x, y = batch
    keys = None if key is None else jax.random.split(key, x.shape[0])
    logits = jax.vmap(lambda x, k: model(x, key=k))(x, keys)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


X, y = data.load_digits()
train = (X[:320].reshape(10, 32, 64), y[:320].reshape(10, 32))
val = (X[1500:1564].reshape(2, 32, 64), y[1500:1564].reshape(2, 32))

model = Net(jax.random.key(0))
result = lrjax.range_test(
    loss_fn,
    model,  # trained: its float arrays; the rest (activations, Dropout's p) is static
    train,
    min_lr=1e-3,
    max_lr=1.0,
    num_lrs=4,
    num_steps=10,
    val_batches=val,  # evaluated under eqx.nn.inference_mode: no Dropout
    return_params=True,
    progress=False,
)
best = result.best_params()  # a Net, ready to use
inference = eqx.nn.inference_mode(best)  # Dropout off
print(type(best).__name__, jax.vmap(inference)(jnp.asarray(X[:3])).shape)
