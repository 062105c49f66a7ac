"""The learning-rate range test: parallel (vmap) and classic sweep.

``lrjax.range_test(loss_fn, params, batches, ...)`` trains many rates side by
side and returns a :class:`RangeTestResult` with suggestions (``valley``,
``minimum``, ``steep``, ``slide``), a per-rate diagnosis and plots.
"""

from lrjax._range_test._adapters import from_linen, from_nnx
from lrjax._range_test._api import range_test
from lrjax._range_test._diagnose import Thresholds
from lrjax._range_test._result import RangeTestResult
from lrjax._range_test._suggest import METHODS as SUGGESTION_METHODS

__all__ = [
    "SUGGESTION_METHODS",
    "RangeTestResult",
    "Thresholds",
    "from_linen",
    "from_nnx",
    "range_test",
]
