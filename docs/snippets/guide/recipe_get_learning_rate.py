import jax.numpy as jnp
import optax

import lrjax

params = {"w": jnp.zeros(3)}
grads = {"w": jnp.ones(3)}

# A plain optax.adam(1e-3) keeps no rate in its state (only counts and moments),
# so there is nothing to read: get_learning_rate says so, naming the two ways out.
state = optax.adam(1e-3).init(params)
try:
    lrjax.get_learning_rate(state)
except ValueError as e:
    print(f"plain adam: ValueError: {e}")

# 1. Pass the rate it was built with; any scale in the chain multiplies it.
print(f"plain adam, base_lr=1e-3: {float(lrjax.get_learning_rate(state, base_lr=1e-3)):.3g}")

# 2. Build it with inject_hyperparams: the state records the rate, and the rate
#    can be changed between steps without recompiling.
tx = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
state = tx.init(params)
print(f"inject_hyperparams(adam): {float(lrjax.get_learning_rate(state)):.3g}")
state.hyperparams["learning_rate"] = jnp.asarray(3e-4)
print(f"after setting it to 3e-4: {float(lrjax.get_learning_rate(state)):.3g}")

# A schedule: inject_hyperparams records the rate of the latest update; with a
# plain optax.adam(schedule), pass the schedule as base_lr.
schedule = lrjax.cosine(init_value=1e-3, steps=100)
for tx, base_lr in [(optax.inject_hyperparams(optax.adam)(schedule), None),
                    (optax.adam(schedule), schedule)]:  # fmt: skip
    state = tx.init(params)
    for _ in range(50):
        _, state = tx.update(grads, state, params)
    rate = float(lrjax.get_learning_rate(state, base_lr=base_lr))
    print(f"after 50 updates: {rate:.4g} (= schedule(49) = {float(schedule(49)):.4g})")
