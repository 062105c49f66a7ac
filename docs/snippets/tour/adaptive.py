import jax.numpy as jnp
import optax

import lrjax

# PyTorch's ReduceLROnPlateau as an Optax transform, chained after the optimizer.
optimizer = optax.chain(optax.adam(1e-3), lrjax.reduce_on_plateau(factor=0.5, patience=1))
params = {"w": jnp.zeros(3)}
state = optimizer.init(params)
for loss in [1.0, 0.8, 0.8, 0.8, 0.8, 0.8]:
    grads = {"w": jnp.ones(3)}  # from jax.grad in a real step
    updates, state = optimizer.update(grads, state, params, value=loss)
    params = optax.apply_updates(params, updates)
    print(f"loss {loss}  rate in force {lrjax.get_learning_rate(state, base_lr=1e-3):.2e}")
