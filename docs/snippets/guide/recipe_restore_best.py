import jax
import jax.numpy as jnp
import numpy as np
import optax

import lrjax
from lrjax.callbacks import keep_best

# 80 noisy training points, 100 features: a linear model that overfits.
rng = np.random.default_rng(0)
w_true = rng.normal(size=100) * (rng.random(100) < 0.2)
x_fit, x_val = rng.normal(size=(80, 100)), rng.normal(size=(200, 100))
y_fit = x_fit @ w_true + 2 * rng.normal(size=80)
y_val = x_val @ w_true + 2 * rng.normal(size=200)


def loss(params, x, y):
    return jnp.mean((x @ params["w"] - y) ** 2)


optimizer = optax.adam(0.01)


@jax.jit
def epoch(params, opt_state):
    grads = jax.grad(loss)(params, x_fit, y_fit)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


stopper = lrjax.early_stopping(patience=10)  # Keras' EarlyStopping(patience=10)
params = best_params = {"w": jnp.zeros(100)}
opt_state, stop_state = optimizer.init(params), stopper.init()
for _ in range(500):
    params, opt_state = epoch(params, opt_state)
    val_loss = loss(params, x_val, y_val)
    stop_state = stopper.update(stop_state, val_loss)
    best_params = keep_best(stop_state, params, best_params)  # these params if a new best
    if stop_state.should_stop:
        break
best, best_epoch = float(stop_state.best), int(stop_state.best_step) + 1
print(f"stopped after epoch {int(stop_state.step)}, validation loss {float(val_loss):.4f}; "
      f"the best was {best:.4f} at epoch {best_epoch}")  # fmt: skip
params = best_params  # restore_best_weights=True
print(f"validation loss of the restored parameters: {float(loss(params, x_val, y_val)):.4f}")
assert loss(params, x_val, y_val) == stop_state.best
