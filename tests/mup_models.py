"""A muP MLP in Flax NNX, at any width: for tests of scale_by_mup and of rates across widths.

The model side of muP (docs/scale.md) for an MLP in ``[in, out]`` kernels:
input and hidden layers keep Flax's default init (LeCun normal, variance
1 / fan-in: constant in width for the input layer, 1 / width for hidden ones)
and zero biases; the readout starts at zero and its input is multiplied by
``base_width / width``. With ``optax.chain(optax.adam(lr), lrjax.scale_by_mup(
base_shapes(), "adam"))`` the best rate stays put as the width grows.

    model = mup_mlp(256, key=jax.random.key(0))
    optimizer = mup_adam(1e-2)  # base shapes at BASE_WIDTH
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import jax
import optax
from flax import nnx

import lrjax

BASE_WIDTH = 16
D_IN, D_OUT, DEPTH = 8, 4, 3


class MupMLP(nnx.Module):
    """``depth`` ReLU layers of ``width`` units and a muP readout."""

    def __init__(
        self, width: int, *, base_width: int = BASE_WIDTH, d_in: int = D_IN, d_out: int = D_OUT,
        depth: int = DEPTH, readout_mult: bool = True, zero_readout: bool = True, rngs: nnx.Rngs,
    ) -> None:  # fmt: skip
        sizes = [d_in] + [width] * depth
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in pairwise(sizes)])
        init = nnx.initializers.zeros if zero_readout else nnx.initializers.lecun_normal()
        self.readout = nnx.Linear(width, d_out, kernel_init=init, rngs=rngs)
        # muP's output multiplier 1 / width_mult; 1.0 gives the standard parametrization.
        self.readout_mult = base_width / width if readout_mult else 1.0

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            x = nnx.relu(layer(x))
        return self.readout(x * self.readout_mult)


def mup_mlp(width: int, *, key: jax.Array | None = None, **kwargs: Any) -> MupMLP:
    """A muP MLP of ``width`` units per layer, initialised from ``key``."""
    key = jax.random.key(0) if key is None else key
    return MupMLP(width, rngs=nnx.Rngs(params=key), **kwargs)


def base_shapes(base_width: int = BASE_WIDTH, **kwargs: Any) -> Any:
    """The ``nnx.Param`` state of the base model, as shapes (nothing allocated)."""
    abstract = nnx.eval_shape(lambda: mup_mlp(base_width, base_width=base_width, **kwargs))
    return nnx.state(abstract, nnx.Param)


def mup_adam(learning_rate: Any, base_width: int = BASE_WIDTH) -> optax.GradientTransformation:
    """Adam with muP's per-parameter rates relative to the base width."""
    return optax.chain(
        optax.adam(learning_rate), lrjax.scale_by_mup(base_shapes(base_width), "adam")
    )
