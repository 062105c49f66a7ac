import jax.numpy as jnp
import optax

import lrjax

ACCUMULATE = 4  # micro-batches per optimizer step
schedule = lrjax.linear(init_value=0.1, end_value=0.01, steps=9)
# MultiSteps sums the gradients of 4 micro-batches and gives the inner optimizer
# their mean every 4th call: the schedule inside counts optimizer steps.
optimizer = optax.MultiSteps(optax.sgd(schedule), every_k_schedule=ACCUMULATE)

params = {"w": jnp.zeros(())}
state = optimizer.init(params)
applied = []
for micro_batch in range(40):
    grads = {"w": jnp.ones(())}  # a gradient of 1: the update is minus the rate
    updates, state = optimizer.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    if micro_batch % ACCUMULATE == ACCUMULATE - 1:
        applied.append(-float(updates["w"]))
        print(
            f"micro-batch {micro_batch + 1:2d}  optimizer step {int(state.gradient_step):2d}  "
            f"rate applied {applied[-1]:.3f}  "
            f"get_learning_rate {float(lrjax.get_learning_rate(state, base_lr=schedule)):.3f}"
        )
    else:
        assert float(updates["w"]) == 0.0  # nothing is applied between optimizer steps

# 40 micro-batches made 10 optimizer steps, and step k used schedule(k).
assert int(state.gradient_step) == 10
assert jnp.allclose(jnp.asarray(applied), schedule(jnp.arange(10)))
