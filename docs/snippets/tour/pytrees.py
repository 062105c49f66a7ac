import jax
import jax.numpy as jnp

import lrjax

traces = []


@jax.jit
def rate(schedule, step):
    traces.append(step)  # runs only while JAX traces (compiles) the function
    return schedule(step)


a = lrjax.one_cycle(max_value=0.1, total_steps=1_000)
b = lrjax.one_cycle(max_value=0.3, total_steps=5_000)  # other values, same kind
print(rate(a, 250), rate(b, 1_250), "compilations:", len(traces))

# 64 one-cycle schedules with different peaks and lengths, stacked into one
# pytree whose leaves are arrays, evaluated in one vmapped call.
schedules = [
    lrjax.one_cycle(max_value=float(p), total_steps=n)
    for p, n in zip(jnp.geomspace(1e-3, 1.0, 64), range(1_000, 7_400, 100))
]
stack = jax.tree.map(lambda *leaves: jnp.stack(leaves), *schedules)
print(stack)
print(jax.vmap(lambda s: s(250))(stack)[-3:], [float(s(250)) for s in schedules[-3:]])
