import jax
import jax.numpy as jnp
import optax
from flax import nnx

import lrjax

BASE_WIDTH = 64  # the width whose rate is tuned: muP changes nothing there


class MuMLP(nnx.Module):
    """A two-layer MLP in muP (``mup=False``: the standard parametrization)."""

    def __init__(self, width: int, *, mup: bool = True, rngs: nnx.Rngs) -> None:
        # Input and hidden kernels keep Flax's default, LeCun normal (variance 1 / fan-in),
        # which is muP's for both; biases start at zero.
        self.input = nnx.Linear(8, width, rngs=rngs)
        self.hidden = nnx.Linear(width, width, rngs=rngs)
        # The readout starts at zero and reads its input times 1 / width_mult.
        init = nnx.initializers.zeros if mup else nnx.initializers.lecun_normal()
        self.readout = nnx.Linear(width, 4, kernel_init=init, rngs=rngs)
        self.readout_mult = BASE_WIDTH / width if mup else 1.0

    def __call__(self, x: jax.Array) -> jax.Array:
        h = nnx.relu(self.hidden(nnx.relu(self.input(x))))
        return self.readout(h * self.readout_mult)


# The base model's parameter shapes; nnx.eval_shape allocates nothing.
base = nnx.state(nnx.eval_shape(lambda: MuMLP(BASE_WIDTH, rngs=nnx.Rngs(0))), nnx.Param)

# Each parameter's kind and rate multipliers, at two widths.
print(f"{'':23}{'width 256':17}width 1024")
print(f"{'parameter':15} {'kind':7}{'Adam':>5}{'SGD':>7}{'Adam':>12}{'SGD':>7}")
shapes = {
    width: lrjax.mup_shapes(nnx.state(MuMLP(width, rngs=nnx.Rngs(0)), nnx.Param), base)
    for width in (256, 1024)
}
for path, s in shapes[256].items():
    row = "".join(
        f"{shapes[w][path].lr_multiplier('adam'):>{a}g}{shapes[w][path].lr_multiplier('sgd'):>7g}"
        for w, a in ((256, 5), (1024, 12))
    )
    print(f"{path:15} {s.kind:7}{row}")

# Three Adam steps at one rate: how far do the outputs move, per width?
x = jax.random.normal(jax.random.key(1), (64, 8))
y = jax.random.randint(jax.random.key(2), (64,), 0, 4)


def output_change(width: int, mup: bool) -> float:
    model = MuMLP(width, mup=mup, rngs=nnx.Rngs(0))
    adam = optax.adam(1e-2)
    tx = optax.chain(adam, lrjax.scale_by_mup(base, "adam")) if mup else adam
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    before = model(x)

    @nnx.jit
    def step(model: MuMLP, optimizer: nnx.Optimizer) -> None:
        def loss_fn(model: MuMLP) -> jax.Array:
            return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

        optimizer.update(model, nnx.grad(loss_fn)(model))

    for _ in range(3):
        step(model, optimizer)
    return float(jnp.sqrt(jnp.mean((model(x) - before) ** 2)))


print("RMS change of the outputs after 3 Adam steps at rate 0.01:")
for width in (64, 256, 1024):
    print(
        f"  width {width:4}: muP {output_change(width, True):.3f}"
        f"   standard {output_change(width, False):.3f}"
    )
