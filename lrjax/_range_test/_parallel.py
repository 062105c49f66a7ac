"""Parallel mode: K log-spaced constant rates trained side by side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lrjax._range_test import _engine
from lrjax._range_test._result import RangeTestResult
from lrjax.schedules._base import float_dtype


def log_rates(min_lr: float, max_lr: float, num_lrs: int) -> np.ndarray:
    """``num_lrs`` log-spaced rates from ``min_lr`` to ``max_lr`` (float64)."""
    return np.geomspace(min_lr, max_lr, num_lrs)


def run_parallel(
    loss_fn: Callable[[Any, Any], Any],
    params: Any,
    seeded: bool,
    batches: Any,
    optimizer: Callable[[Any], Any],
    lrs: np.ndarray,
    num_steps: int,
    diverge_factor: float,
    chunk_size: int | None,
    mesh: Any,
    progress: bool | None,
) -> RangeTestResult:
    """Trains one copy per rate (and per seed) and builds the result."""
    out = _engine.train_copies(
        loss_fn=loss_fn,
        make_tx=_engine.ConstantRate(optimizer),
        hparams=lrs.astype(float_dtype()),
        params=params,
        seeded=seeded,
        batches=batches,
        num_steps=num_steps,
        diverge_factor=diverge_factor,
        chunk_size=chunk_size,
        mesh=mesh,
        progress=progress,
        description=f"range test: {lrs.size} rates x {num_steps} steps",
    )
    return RangeTestResult.from_parallel(
        lrs[: out.completed],
        out.losses,
        out.smoothed,
        out.stop_step,
        diverge_factor,
        interrupted=out.completed < lrs.size,
    )
