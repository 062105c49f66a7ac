"""lrjax: the learning rate as a first-class, traceable object in JAX.

Schedules are frozen pytree dataclasses (``lrjax.cosine(...)(step)``), adaptive
rates are Optax transforms (``lrjax.reduce_on_plateau``), and
``lrjax.range_test`` trains many learning rates side by side with ``jax.vmap``.
"""

from lrjax import schedules
from lrjax.schedules import (
    Schedule,
    add,
    clip,
    constant,
    cosine,
    cosine_restarts,
    cyclic,
    exponential,
    flat_cos,
    from_dict,
    inverse_sqrt,
    inverse_time,
    join,
    linear,
    multistep,
    one_cycle,
    one_cycle_momentum,
    piecewise_constant,
    polynomial,
    product,
    rex,
    scale,
    step_decay,
    warmup,
    wsd,
)

# --- transforms and callbacks (lrjax/transforms, lrjax/callbacks.py) ---
# isort: split
from lrjax import callbacks, transforms
from lrjax.callbacks import early_stopping
from lrjax.transforms import (
    adabound,
    bold_driver,
    get_hyperparam,
    get_learning_rate,
    layer_multipliers,
    mup_shapes,
    parameter_paths,
    reduce_on_plateau,
    scale_by_layer,
    scale_by_mup,
)

# --- range test, sweeps and tuning: thin fronts over lrjax/_engine, _search, _results ---
# isort: split
from lrjax import data
from lrjax._flax_losses import from_linen, from_nnx
from lrjax._lr_find import lr_find
from lrjax._range_test import range_test
from lrjax._results import (
    RampResult,
    RangeTestResult,
    SweepResult,
    Thresholds,
    TransferResult,
    TuneResult,
)
from lrjax._sweep import sweep
from lrjax._transfer import transfer
from lrjax._tune import tune

# --- start-up: the persistent compilation cache (lrjax/_compile_cache.py) ---
# isort: split
from lrjax._compile_cache import disable_compilation_cache, enable_compilation_cache

#: The methods of :meth:`RangeTestResult.suggest` (``"budget"`` is the default with
#: validation data, ``"near_best"`` without).
SUGGESTION_METHODS = RangeTestResult.methods

__version__ = "0.1.0"

__all__ = [
    "SUGGESTION_METHODS",
    "RampResult",
    "RangeTestResult",
    "Schedule",
    "SweepResult",
    "Thresholds",
    "TransferResult",
    "TuneResult",
    "adabound",
    "add",
    "bold_driver",
    "callbacks",
    "clip",
    "constant",
    "cosine",
    "cosine_restarts",
    "cyclic",
    "data",
    "disable_compilation_cache",
    "early_stopping",
    "enable_compilation_cache",
    "exponential",
    "flat_cos",
    "from_dict",
    "from_linen",
    "from_nnx",
    "get_hyperparam",
    "get_learning_rate",
    "inverse_sqrt",
    "inverse_time",
    "join",
    "layer_multipliers",
    "linear",
    "lr_find",
    "multistep",
    "mup_shapes",
    "one_cycle",
    "one_cycle_momentum",
    "parameter_paths",
    "piecewise_constant",
    "polynomial",
    "product",
    "range_test",
    "reduce_on_plateau",
    "rex",
    "scale",
    "scale_by_layer",
    "scale_by_mup",
    "schedules",
    "step_decay",
    "sweep",
    "transfer",
    "transforms",
    "tune",
    "warmup",
    "wsd",
]

# Modules whose import would be slow or pull in an optional extra (matplotlib):
# reachable as ``lrjax.plotting`` after ``import lrjax``, imported on first use (PEP 562).
_LAZY_MODULES = ("cli", "plotting")


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module(f"lrjax.{name}")
    raise AttributeError(f"module 'lrjax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_MODULES))
