import jax.numpy as jnp
import numpy as np
import optax

import lrjax

# A pretrained body (two layers) extended with a new head.
params = {
    "body0": {"w": jnp.zeros((64, 64))},
    "body1": {"w": jnp.zeros((64, 64))},
    "head": {"w": jnp.zeros((64, 3))},
}
print(lrjax.transforms.parameter_paths(params))  # what the patterns below are matched against

# fastai's lr_max=slice(1e-4, 1e-2): rates spread geometrically, first group to last,
# as multipliers of Adam's rate 1e-2.
multipliers = lrjax.layer_multipliers(3, lo=1e-2, hi=1.0)
groups = dict(zip(["^body0/", "^body1/", "^head/"], multipliers))
print({pattern: f"{1e-2 * m:.0e}" for pattern, m in groups.items()})
optimizer = optax.chain(optax.adam(1e-2), lrjax.scale_by_layer(groups))

grads = {g: {"w": jnp.ones_like(p["w"])} for g, p in params.items()}
updates, _ = optimizer.update(grads, optimizer.init(params), params)
for g in params:
    print(f"{g}: first step {float(jnp.abs(updates[g]['w']).mean()):.0e}")

# The same steps as one Adam per group at its own rate (Adam's step is proportional
# to its rate), with one optimizer state instead of three.
per_group = optax.multi_transform(
    {g: optax.adam(1e-2 * m) for g, m in zip(params, multipliers)},
    param_labels={g: g for g in params},
)
reference, _ = per_group.update(grads, per_group.init(params), params)
for g in params:
    np.testing.assert_allclose(updates[g]["w"], reference[g]["w"], rtol=1e-6)
