import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import lrjax

rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(size=(256, 8)), jnp.float32)
y = x @ jnp.arange(1.0, 9.0) + jnp.asarray(rng.normal(size=256), jnp.float32)  # noisy targets

model = nnx.Linear(8, 1, rngs=nnx.Rngs(0))
# Halve the rate once 4 updates in a row bring no 1% improvement of the loss.
tx = optax.chain(optax.sgd(0.05), lrjax.reduce_on_plateau(factor=0.5, patience=3, threshold=0.01))
optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)


@nnx.jit
def train_step(model, optimizer, x, y):
    def loss_fn(model):
        return jnp.mean((model(x)[:, 0] - y) ** 2)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads, value=loss)  # keyword arguments reach the transforms
    return loss


rates = []
for step in range(80):
    loss = train_step(model, optimizer, x, y)
    rates.append(float(lrjax.get_learning_rate(optimizer.opt_state, base_lr=0.05)))
    if step % 10 == 9:
        print(f"step {step + 1:2d}  loss {float(loss):.4f}  rate {rates[-1]:.4g}")

# The loss reached the noise floor (about 1), stopped improving, and the rate was cut.
assert rates[-1] < rates[0] / 10
