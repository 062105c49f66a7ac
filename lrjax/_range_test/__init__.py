"""The learning-rate range test: parallel (vmap) and the classic ramp.

``lrjax.range_test(loss_fn, params, batches, ...)`` trains many rates side by
side and returns a :class:`RangeTestResult` (suggestions, a per-rate diagnosis,
plots); ``mode="sweep"`` runs the classic ramp and returns a :class:`RampResult`.
"""

from lrjax._range_test._adapters import from_linen, from_nnx
from lrjax._range_test._api import range_test
from lrjax._range_test._result import RampResult, RangeTestResult
from lrjax._train._diagnose import Thresholds

#: The methods of :meth:`RangeTestResult.suggest` (``"best"`` is the default).
SUGGESTION_METHODS = RangeTestResult.methods

__all__ = [
    "SUGGESTION_METHODS",
    "RampResult",
    "RangeTestResult",
    "Thresholds",
    "from_linen",
    "from_nnx",
    "range_test",
]
