"""Rules that more than one layer applies, written once.

How a copy's training is scored (the mean loss over the last tenth of its
steps) and how a constant rate found on a short run scales to a longer one.
The engine's searches score inside compiled programs (JAX arrays), the results
and the command line on the host (NumPy): :func:`training_score` takes the
array module, so both compute the one rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: A training score averages the last ``1 / SCORE_FRACTION`` of the steps.
SCORE_FRACTION = 10


def score_window(num_steps: int) -> int:
    """Steps averaged into a training score: the last 10% (at least one).

    Example:
      >>> score_window(100), score_window(5)
      (10, 1)
    """
    return max(1, num_steps // SCORE_FRACTION)


def training_score(losses: Any, xp: Any = np) -> Any:
    """The mean of the last :func:`score_window` losses along the last (step) axis.

    Args:
      losses: ``[..., num_steps]`` raw training losses.
      xp: the array module (``numpy`` or ``jax.numpy``).

    Example:
      >>> training_score(np.arange(20.0))  # the mean of steps 18 and 19
      np.float64(18.5)
    """
    n = losses.shape[-1]
    return xp.mean(losses[..., n - score_window(n) :], axis=-1)


def scale_to_run(rate: float, test_steps: int, run_steps: int) -> float:
    """A constant rate found best on ``test_steps`` steps, for a run of ``run_steps``:
    ``rate * min(1, test_steps / run_steps)`` (the best constant rate falls about
    in proportion to the run's length; never raised for a shorter run).

    Example:
      >>> scale_to_run(0.3, 100, 1000), scale_to_run(0.3, 100, 50)
      (0.03, 0.3)
    """
    return float(rate) * min(1.0, test_steps / run_steps)
