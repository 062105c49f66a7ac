"""One score per copy: the number every result ranks copies by.

The training score is the mean raw loss over the last 10% of steps
(:func:`lrjax._rules.training_score`); with evaluation data the score is the
evaluation loss after the last step. Either is averaged over seeds, and a copy
that diverged for any seed scores ``inf``.
"""

from __future__ import annotations

import numpy as np

from lrjax._rules import score_window, training_score


def seed_scores(
    losses: np.ndarray, stop_step: np.ndarray, val_losses: np.ndarray | None = None
) -> np.ndarray:
    """Each seed's score of each copy, ``[seeds, K]`` (``inf`` where that seed diverged).

    Args:
      losses: ``[seeds, K, T]`` raw training losses.
      stop_step: ``[seeds, K]``, ``-1`` where a copy never diverged.
      val_losses: ``[seeds, K]`` evaluation losses after the last step, or ``None``.
    """
    with np.errstate(invalid="ignore"):
        if val_losses is None:
            raw = training_score(np.asarray(losses, np.float64))
        else:
            raw = np.asarray(val_losses, np.float64)
        return np.where(np.asarray(stop_step) >= 0, np.inf, raw)


def copy_scores(
    losses: np.ndarray, stop_step: np.ndarray, val_losses: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scores, score_std, diverged)`` per copy from ``[seeds, K, T]`` losses:
    :func:`seed_scores` averaged over seeds (``inf`` where any seed diverged)."""
    per_seed = seed_scores(losses, stop_step, val_losses)
    diverged = (np.asarray(stop_step) >= 0).any(axis=0)
    with np.errstate(invalid="ignore"):
        scores = np.where(diverged, np.inf, per_seed.mean(axis=0))
        std = np.where(diverged, np.inf, np.where(diverged, 0.0, per_seed).std(axis=0))
    return scores, std, diverged


def score_label(validated: bool, num_steps: int, span: str | None = None) -> str:
    """What the scores of a run of ``num_steps`` steps measure, for tables and axes
    (``span``: the stretch a score ends, such as a search's ``"round"``).

    Example:
      >>> score_label(False, 100), score_label(True, 100)
      ('mean training loss, last 10 steps', 'validation loss after the last step')
      >>> score_label(False, 30, span="round")
      'mean training loss, last 3 steps of the round'
    """
    if validated:
        return f"validation loss after the {span or 'last step'}"
    of = f" of the {span}" if span else ""
    return f"mean training loss, last {score_window(num_steps)} steps{of}"
