"""One score per copy: the number every front ranks copies by.

The training score is the mean raw loss over the last 10% of steps
(``max(1, num_steps // 10)`` steps); with evaluation data the score is the
evaluation loss after the last step. Either is averaged over seeds, and a copy
that diverged for any seed scores ``inf``.
"""

from __future__ import annotations

import numpy as np


def score_window(num_steps: int) -> int:
    """Steps averaged into a training score: the last 10% (at least one)."""
    return max(1, num_steps // 10)


def copy_scores(
    losses: np.ndarray, stop_step: np.ndarray, val_losses: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scores, score_std, diverged)`` per copy from ``[seeds, K, T]`` losses.

    Args:
      losses: ``[seeds, K, T]`` raw training losses.
      stop_step: ``[seeds, K]``, ``-1`` where a copy never diverged.
      val_losses: ``[seeds, K]`` evaluation losses after the last step, or ``None``.
    """
    T = losses.shape[-1]
    w = score_window(T)
    seed_div = np.asarray(stop_step) >= 0
    with np.errstate(invalid="ignore"):
        raw = (
            losses[..., T - w :].astype(np.float64).mean(-1)
            if val_losses is None
            else np.asarray(val_losses, np.float64)
        )
        per_seed = np.where(seed_div, np.inf, raw)
    diverged = seed_div.any(axis=0)
    scores = np.where(diverged, np.inf, per_seed.mean(axis=0))
    std = np.where(diverged, np.inf, np.where(diverged, 0.0, per_seed).std(axis=0))
    return scores, std, diverged
