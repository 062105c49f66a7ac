import jax
import jax.numpy as jnp
import optax

import lrjax

# The same two gradients at every step: one small, one large.
grads = jnp.array([1e-3, 1.0])
params = jnp.zeros(2)
cosine = lrjax.cosine(init_value=0.1, steps=1000)
optimizers = {
    "adagrad": optax.adagrad(0.1),
    "adam": optax.adam(0.1),
    "adam + cosine": optax.adam(cosine),
    "adabound": lrjax.adabound(0.1, final_lr=0.1),
}
checkpoints = (1, 10, 100, 500, 1000)
print("step size |update| / lr0 at step:   " + "".join(f"{t:>16d}" for t in checkpoints))
for name, opt in optimizers.items():
    state = opt.init(params)

    def step(state, _):
        updates, state = opt.update(grads, state, params)
        return state, jnp.abs(updates)

    _, sizes = jax.lax.scan(step, state, length=checkpoints[-1])
    row = "".join(
        f"  {sizes[t - 1, 0] / 0.1:6.3f},{sizes[t - 1, 1] / 0.1:7.3f}" for t in checkpoints
    )
    print(f"{name:15s} (small, large grad)  {row}")
