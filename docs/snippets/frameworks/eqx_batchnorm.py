import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import lrjax
from lrjax import data


class Model(eqx.Module):
    """Equinox's stateful example: Linear, BatchNorm, Linear."""

    linear1: eqx.nn.Linear
    norm: eqx.nn.BatchNorm
    linear2: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.linear1 = eqx.nn.Linear(64, 32, key=k1)
        self.norm = eqx.nn.BatchNorm(32, axis_name="batch", mode="batch")
        self.linear2 = eqx.nn.Linear(32, 10, key=k2)

    def __call__(self, x, state):
        x, state = self.norm(self.linear1(x), state)
        return self.linear2(jax.nn.relu(x)), state


def loss_fn(model, state, batch):  # with state=: return (loss, new_state)
    x, y = batch
    batch_model = jax.vmap(model, axis_name="batch", in_axes=(0, None), out_axes=(0, None))
    logits, state = batch_model(x, state)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), state


X, y = data.load_digits()
train = (X[:320].reshape(10, 32, 64), y[:320].reshape(10, 32))
val = (X[1500:1564].reshape(2, 32, 64), y[1500:1564].reshape(2, 32))

model, state = eqx.nn.make_with_state(Model)(jax.random.key(0))
result = lrjax.range_test(
    loss_fn,
    model,
    train,
    state=state,  # the eqx.nn.State, carried per copy
    min_lr=1e-3,
    max_lr=1.0,
    num_lrs=4,
    num_steps=10,
    val_batches=val,  # evaluated under eqx.nn.inference_mode: running statistics
    return_params=True,
    progress=False,
)
best, best_state = result.best_params(), result.best_state()
inference = eqx.nn.inference_mode(best)
logits, _ = jax.vmap(inference, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(
    jnp.asarray(X[:3]), best_state
)
print(type(best).__name__, type(best_state).__name__, logits.shape)
