import jax.numpy as jnp
import optax

# Four parameters whose gradients span five orders of magnitude.
grads = jnp.array([1e-4, 1e-2, 1.0, 10.0])
params = jnp.zeros(4)
optimizers = {
    "sgd": optax.sgd(0.1),
    "adagrad": optax.adagrad(0.1),
    "rmsprop": optax.rmsprop(0.1),
    "adam": optax.adam(0.1),
}
print("gradient   " + "".join(f"{g:>10g}" for g in grads))
for name, opt in optimizers.items():
    updates, _ = opt.update(grads, opt.init(params), params)
    print(f"{name:10s} " + "".join(f"{u:10.3g}" for u in updates))
