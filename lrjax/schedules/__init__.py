"""Learning-rate schedules as data: frozen dataclasses that are JAX pytrees.

Every schedule is a pure, jit-compatible ``step -> rate`` map usable wherever
Optax takes a schedule, and every numeric hyperparameter is a pytree leaf, so
schedules can be traced, stacked and vmapped without recompiling.
"""

from lrjax.schedules._base import Schedule, catalogue, from_dict
from lrjax.schedules._compose import add, clip, join, product, scale, warmup
from lrjax.schedules._cosine import cosine, cosine_restarts, flat_cos
from lrjax.schedules._cyclic import cyclic, one_cycle, one_cycle_momentum
from lrjax.schedules._decay import exponential, inverse_sqrt, inverse_time, linear, polynomial, rex
from lrjax.schedules._piecewise import constant, multistep, piecewise_constant, step_decay
from lrjax.schedules._wsd import wsd

#: Compositions are schedules too, but not entries of the catalogue table.
COMPOSITIONS = ("warmup", "join", "clip", "scale", "add", "product")

#: The catalogue: every schedule family of docs/schedules.md, by name.
CATALOGUE = {k: v for k, v in catalogue().items() if k not in COMPOSITIONS}

__all__ = [
    "CATALOGUE",
    "COMPOSITIONS",
    "Schedule",
    "add",
    "catalogue",
    "clip",
    "constant",
    "cosine",
    "cosine_restarts",
    "cyclic",
    "exponential",
    "flat_cos",
    "from_dict",
    "inverse_sqrt",
    "inverse_time",
    "join",
    "linear",
    "multistep",
    "one_cycle",
    "one_cycle_momentum",
    "piecewise_constant",
    "polynomial",
    "product",
    "rex",
    "scale",
    "step_decay",
    "warmup",
    "wsd",
]
