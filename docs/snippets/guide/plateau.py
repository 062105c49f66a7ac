import jax
import numpy as np
import optax

import lrjax
from lrjax import data

X, y = data.load_digits()
order = np.random.default_rng(0).permutation(len(X))
val, fit = order[:400], order[400:]
STEPS_PER_EPOCH, EPOCHS, LR = 20, 20, 2e-2
batches = data.make_batches(X[fit], y[fit], num_steps=STEPS_PER_EPOCH * EPOCHS, batch_size=64)

# Adam at a deliberately high rate, scaled down by 0.3 once 3 epochs in a row bring
# no new best validation loss (patience=2, PyTorch's count). The transform is given
# the value at every update and checks once per epoch (accumulation_steps): every
# update of an epoch gets the validation loss measured just before it.
optimizer = optax.chain(
    optax.adam(LR),
    lrjax.reduce_on_plateau(factor=0.3, patience=2, accumulation_steps=STEPS_PER_EPOCH),
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
rates, losses = [], []
for e in range(EPOCHS):
    chunk = jax.tree.map(lambda a: a[e * STEPS_PER_EPOCH : (e + 1) * STEPS_PER_EPOCH], batches)
    params, state = epoch(params, state, chunk, val_loss)
    val_loss = data.mlp_loss(params, (X[val], y[val]))
    rates.append(float(lrjax.get_learning_rate(state, base_lr=LR)))  # LR times the scale
    losses.append(float(val_loss))
    print(f"epoch {e + 1:2d}  validation loss {val_loss:.4f}  rate {rates[-1]:.2e}")

# The validation loss stalled, the rate came down, and then it reached a new best.
first_cut = next(i for i, r in enumerate(rates) if r < rates[0])
assert min(losses[first_cut:]) < min(losses[:first_cut])
# ... the first cut after three epochs without a new best (patience=2: the third cuts)
assert first_cut - 1 - int(np.argmin(losses[:first_cut])) == 3
