import jax
import numpy as np
import optax

from lrjax import data

X, y = data.load_digits()
order = np.random.default_rng(0).permutation(len(X))
val, fit = order[:400], order[400:]
STEPS_PER_EPOCH, EPOCHS = 20, 20
batches = data.make_batches(X[fit], y[fit], num_steps=STEPS_PER_EPOCH * EPOCHS, batch_size=64)

# Adam at a deliberately high rate, scaled down by 0.3 after 3 epochs without a
# new best validation loss. The transform is given the value at every update and
# checks once per epoch (accumulation_size): every update of an epoch gets the
# validation loss measured just before it.
optimizer = optax.chain(
    optax.adam(2e-2),
    optax.contrib.reduce_on_plateau(factor=0.3, patience=3, accumulation_size=STEPS_PER_EPOCH),
)


@jax.jit
def epoch(params, state, epoch_batches, val_loss):
    def step(carry, batch):
        params, state = carry
        grads = jax.grad(data.mlp_loss)(params, batch)
        updates, state = optimizer.update(grads, state, params, value=val_loss)
        return (optax.apply_updates(params, updates), state), None

    (params, state), _ = jax.lax.scan(step, (params, state), epoch_batches)
    return params, state


params = data.init_mlp(jax.random.key(0))
state = optimizer.init(params)
val_loss = data.mlp_loss(params, (X[val], y[val]))
scales, losses = [], []
for e in range(EPOCHS):
    chunk = jax.tree.map(lambda a: a[e * STEPS_PER_EPOCH : (e + 1) * STEPS_PER_EPOCH], batches)
    params, state = epoch(params, state, chunk, val_loss)
    val_loss = data.mlp_loss(params, (X[val], y[val]))
    scales.append(float(state[1].scale))
    losses.append(float(val_loss))
    print(f"epoch {e + 1:2d}  validation loss {val_loss:.4f}  rate {2e-2 * scales[-1]:.2e}")

# The validation loss stalled, the rate came down, and then it reached a new best.
first_cut = next(i for i, s in enumerate(scales) if s < 1)
assert min(losses[first_cut:]) < min(losses[:first_cut])
