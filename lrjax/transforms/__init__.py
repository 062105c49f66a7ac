"""Optax transforms for rates that adapt while training.

Every transform is an ``optax.GradientTransformation`` (``ExtraArgs`` where it
reads the monitored ``value``) that works inside ``optax.chain``, ``jax.jit``,
``jax.vmap`` and ``optax.inject_hyperparams``; its state is a NamedTuple of
arrays, so it checkpoints with ``flax.serialization`` and Orbax.
"""

from lrjax.transforms._adabound import AdaBoundState, adabound
from lrjax.transforms._bold_driver import BoldDriverState, bold_driver
from lrjax.transforms._layers import (
    ScaleByLayerState,
    layer_multipliers,
    parameter_paths,
    scale_by_layer,
)
from lrjax.transforms._mup import MupShape, mup_shapes, scale_by_mup
from lrjax.transforms._plateau import ReduceOnPlateauState, reduce_on_plateau
from lrjax.transforms._readout import get_hyperparam, get_learning_rate

__all__ = [
    "AdaBoundState",
    "BoldDriverState",
    "MupShape",
    "ReduceOnPlateauState",
    "ScaleByLayerState",
    "adabound",
    "bold_driver",
    "get_hyperparam",
    "get_learning_rate",
    "layer_multipliers",
    "mup_shapes",
    "parameter_paths",
    "reduce_on_plateau",
    "scale_by_layer",
    "scale_by_mup",
]
