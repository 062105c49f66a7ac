"""Sweep mode: the classic single run with the rate ramped along the steps.

fastai ``lr_find`` / torch-lr-finder semantics: at step ``t`` the loss is
computed on batch ``t`` and the update uses rate ``lrs[t]``; the loss is
smoothed by a debiased EMA (beta 0.98) and the run stops (parameters frozen,
later losses NaN) once the smoothed loss exceeds ``diverge_factor`` x its best
or the loss is non-finite. One jitted ``lax.scan``, shared with parallel mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lrjax._range_test import _engine
from lrjax._range_test._result import RangeTestResult
from lrjax.schedules._base import float_dtype

STEP_MODES = ("exp", "linear")


def ramp(min_lr: float, max_lr: float, num_steps: int, step_mode: str = "exp") -> np.ndarray:
    """The rate at each step: from ``min_lr`` at step 0 to ``max_lr`` at the last.

    ``exp``: ``min_lr * (max_lr / min_lr) ** (t / (num_steps - 1))`` (as
    torch-lr-finder; fastai divides by ``num_steps`` and stops one step short of
    ``max_lr``). ``linear``: ``min_lr + (max_lr - min_lr) * t / (num_steps - 1)``.
    """
    t = np.arange(num_steps, dtype=np.float64)
    frac = t / max(num_steps - 1, 1)
    if step_mode == "exp":
        return min_lr * (max_lr / min_lr) ** frac
    if step_mode == "linear":
        return min_lr + (max_lr - min_lr) * frac
    raise ValueError(f"step_mode must be one of {list(STEP_MODES)}, got {step_mode!r}")


def run_sweep(
    loss_fn: Callable[[Any, Any], Any],
    params: Any,
    batches: Any,
    optimizer: Callable[[Any], Any],
    lrs: np.ndarray,
    num_steps: int,
    diverge_factor: float,
    step_mode: str,
    progress: bool | None,
) -> RangeTestResult:
    """Runs the ramp as one copy and builds the result."""
    out = _engine.train_copies(
        loss_fn=loss_fn,
        make_tx=_engine.RampRate(optimizer),
        hparams=lrs.astype(float_dtype())[None],
        params=params,
        seeded=False,
        batches=batches,
        num_steps=num_steps,
        diverge_factor=diverge_factor,
        progress=progress,
        description=f"range test sweep: {num_steps} steps",
    )
    return RangeTestResult.from_sweep(
        lrs,
        out.losses[0, 0],
        out.smoothed[0, 0],
        int(out.stop_step[0, 0]),
        diverge_factor,
        step_mode,
    )
