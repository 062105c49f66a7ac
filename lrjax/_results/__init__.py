"""Results: NumPy arrays and the rules read off them (no JAX, no engine).

One class per kind of run (:class:`SweepResult` for a grid, :class:`RangeTestResult`
for the parallel range test, :class:`RampResult` for the classic ramp,
:class:`TuneResult` for a search, :class:`TransferResult` for the rate at a
larger size from sweeps at small ones), the scores (``_score``), the per-copy
diagnosis (:class:`Thresholds`), the suggestion rules (``_suggest``), JSON
helpers, and every picture (``_plots``).
"""

from lrjax._results._diagnose import Thresholds, diagnose_curves, diagnose_ramp
from lrjax._results._plots import (
    MAX_POINTS,
    agg_figure,
    figure_and_axes,
    image_formats,
    plot_schedule,
    range_test_figure,
    require_matplotlib,
)
from lrjax._results._ramp import STEP_MODES, ramp
from lrjax._results._range_test import RampResult, RangeTestResult
from lrjax._results._score import copy_scores, score_label, seed_scores
from lrjax._results._suggest import METHODS as FASTAI_METHODS
from lrjax._results._suggest import minimum, near_best, slide, steep, suggest, valley
from lrjax._results._sweep import (
    STATUSES,
    SweepResult,
    from_json,
    json_scalar,
    summarize_values,
    to_json,
)
from lrjax._results._transfer import TransferResult, check_options, check_sizes
from lrjax._results._tune import TuneHistory, TuneResult
