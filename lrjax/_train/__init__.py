"""The private engine shared by ``range_test``, ``sweep`` and ``tune``.

``prepare`` checks and normalises the user's model, data and randomness;
``run`` plans the chunks and blocks, places inputs on the devices and runs the
compiled kernel (``jit`` of ``vmap`` over copies and seeds of a ``lax.scan``);
``scores`` turns per-step losses into one score per copy.
"""

from lrjax._train._loop import (
    ConstantRate,
    KwargsOptimizer,
    RampRate,
    as_mesh,
    check_chunk_size,
    check_eval_every,
    run,
)
from lrjax._train._prepare import check_diverge_factor, check_optimizer, prepare
from lrjax._train._score import copy_scores, score_window
