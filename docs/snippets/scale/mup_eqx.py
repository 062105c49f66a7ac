import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import lrjax

BASE_WIDTH = 64


def zeroed(linear: eqx.nn.Linear, weight: bool = False) -> eqx.nn.Linear:
    """``linear`` with a zero bias (and a zero weight)."""
    linear = eqx.tree_at(lambda layer: layer.bias, linear, jnp.zeros_like(linear.bias))
    if weight:
        linear = eqx.tree_at(lambda layer: layer.weight, linear, jnp.zeros_like(linear.weight))
    return linear


class MuMLP(eqx.Module):
    input: eqx.nn.Linear
    hidden: eqx.nn.Linear
    readout: eqx.nn.Linear
    readout_mult: float = eqx.field(static=True)

    def __init__(self, width: int, *, key: jax.Array) -> None:
        k_in, k_hidden, k_out = jax.random.split(key, 3)
        # Equinox draws weights uniform in +-1/sqrt(fan_in) (variance 1 / (3 fan-in): muP's
        # scaling) and biases the same way, which muP does not want: they start at zero.
        self.input = zeroed(eqx.nn.Linear(8, width, key=k_in))
        self.hidden = zeroed(eqx.nn.Linear(width, width, key=k_hidden))
        self.readout = zeroed(eqx.nn.Linear(width, 4, key=k_out), weight=True)
        self.readout_mult = BASE_WIDTH / width

    def __call__(self, x: jax.Array) -> jax.Array:
        h = jax.nn.relu(self.hidden(jax.nn.relu(self.input(x))))
        return self.readout(h * self.readout_mult)


# The base model's trainable leaves as shapes (Equinox weights are [out, in]:
# scale_by_mup reads an Equinox module that way by itself).
base = jax.eval_shape(
    lambda: eqx.filter(MuMLP(BASE_WIDTH, key=jax.random.key(0)), eqx.is_inexact_array)
)
model = MuMLP(1024, key=jax.random.key(0))
for path, s in lrjax.mup_shapes(eqx.filter(model, eqx.is_inexact_array), base).items():
    print(f"{path:15} {s.kind:7} {s.shape!s:13} SGD rate x{s.lr_multiplier('sgd'):g}")

optimizer = optax.chain(optax.sgd(0.1, momentum=0.9), lrjax.scale_by_mup(base, "sgd"))
opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
x = jax.random.normal(jax.random.key(1), (64, 8))
y = jax.random.randint(jax.random.key(2), (64,), 0, 4)


@eqx.filter_jit
def step(model: MuMLP, opt_state: optax.OptState) -> tuple[MuMLP, optax.OptState, jax.Array]:
    def loss_fn(model: MuMLP) -> jax.Array:
        logits = jax.vmap(model)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
    updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
    return eqx.apply_updates(model, updates), opt_state, loss


for _ in range(3):
    model, opt_state, loss = step(model, opt_state)
    print(f"loss {float(loss):.4f}")
