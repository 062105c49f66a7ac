import jax.numpy as jnp
import numpy as np
import optax

# A pretrained body (two layers) extended with a new head.
params = {
    "body0": {"w": jnp.zeros((64, 64))},
    "body1": {"w": jnp.zeros((64, 64))},
    "head": {"w": jnp.zeros((64, 3))},
}
groups = ["body0", "body1", "head"]

# fastai's lr_max=slice(1e-4, 1e-2): rates spread geometrically, first group to last.
rates = dict(zip(groups, np.geomspace(1e-4, 1e-2, len(groups))))
print({g: f"{r:.0e}" for g, r in rates.items()})

# One Adam per group; each parameter follows the transform of its group's label.
optimizer = optax.multi_transform(
    {g: optax.adam(float(r)) for g, r in rates.items()},
    param_labels={g: g for g in groups},
)
grads = {g: {"w": jnp.ones_like(p["w"])} for g, p in params.items()}
updates, _ = optimizer.update(grads, optimizer.init(params), params)
for g in groups:
    print(f"{g}: first step {float(jnp.abs(updates[g]['w']).mean()):.0e}")
