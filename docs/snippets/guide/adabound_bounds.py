import jax
import jax.numpy as jnp

import lrjax

# AdaBound (Luo et al. 2019) clips Adam's per-parameter step size lr / sqrt(v) into
# [lower(t), upper(t)]; both bounds close in on final_lr as t grows. A parameter with
# a tiny gradient wants a huge step size and gets the upper bound, one with a huge
# gradient gets the lower bound: the step size applied is -update / momentum.
final_lr, gamma = 0.1, 1e-3
tx = lrjax.adabound(learning_rate=1e-3, final_lr=final_lr, gamma=gamma)
grads = params = jnp.array([1e-10, 1e4])


def step(state, _):
    updates, state = tx.update(grads, state, params)
    return state, -updates / state.mu


_, step_sizes = jax.lax.scan(step, tx.init(params), length=100_000)
print("     step     lower     upper")
for t in (1, 10, 100, 1_000, 10_000, 100_000):
    upper, lower = step_sizes[t - 1]
    print(f"{t:9d} {lower:9.4f} {upper:9.4f}")
    # The paper's bounds.
    assert jnp.isclose(lower, final_lr * (1 - 1 / (gamma * t + 1)), rtol=1e-3)
    assert jnp.isclose(upper, final_lr * (1 + 1 / (gamma * t)), rtol=1e-3)
