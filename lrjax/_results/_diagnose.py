"""Per-rate diagnosis: ``diverged``, ``unstable``, ``slow`` or ``good``.

The parallel range test labels each rate from its own training curve ``L``
(the raw loss, averaged over seeds). With ``w = max(1, num_steps // 10)``,
``m`` the running mean of ``L`` over ``w`` steps (``m[-1]`` is the end level,
the score), the start level ``h = min(L[0], m[0])`` (robust to batch noise and
to an early spike) and ``scale = |h|``:

- ``diverged``: the copy was frozen (non-finite loss, or smoothed loss above
  ``diverge_factor`` x its best) for at least one seed.
- ``unstable``: it spiked, rose or oscillated: ``max(m) - h > spike * scale``
  (went well above where it started), or ``m[-1] - min(m) > rise * scale``
  (ended well above its best), or the mean absolute step-to-step change of
  ``L`` over the second half exceeds ``jitter * scale``.
- ``slow``: it barely decreased: ``h - m[-1] < slow * scale``.
- ``good``: everything else.

The ramp (:func:`lrjax.lr_find`) labels each step (each rate of the ramp)
from the smoothed curve ``s``, with ``scale = |s[0]|``: ``diverged`` from the
stop on, ``unstable`` once ``s`` is more than ``rise * scale`` above its
running minimum (the curve has turned upward), ``slow`` while ``s`` is within
``slow * scale`` of its start, ``good`` in between (the descending stretch).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lrjax._rules import score_window

LABELS = ("diverged", "unstable", "slow", "good")


class Thresholds(NamedTuple):
    """Thresholds of the diagnosis, as fractions of the initial loss.

    Attributes:
      spike: a running mean this far above the initial loss is ``unstable``.
      rise: an end (or, on the ramp, current) level this far above the best is ``unstable``.
      jitter: a mean absolute step change over the second half this large is ``unstable``.
      slow: a total decrease smaller than this is ``slow``.
    """

    spike: float = 0.25
    rise: float = 0.1
    jitter: float = 0.2
    slow: float = 0.1


DEFAULT = Thresholds()


def _running_mean(x: np.ndarray, w: int) -> np.ndarray:
    c = np.cumsum(np.concatenate([np.zeros((*x.shape[:-1], 1)), x], axis=-1), axis=-1)
    return (c[..., w:] - c[..., :-w]) / w


def diagnose_curves(
    curves: np.ndarray, diverged: np.ndarray, thresholds: Thresholds = DEFAULT
) -> np.ndarray:
    """Labels ``[K]`` rates from their ``[K, num_steps]`` curves (vectorised).

    Example:
      >>> import numpy as np
      >>> t = np.arange(20.0)
      >>> curves = np.stack([2 - 0.001 * t, 2 * np.exp(-t / 5), 2 + 0.0 * t])
      >>> diagnose_curves(curves, np.array([False, False, True])).tolist()
      ['slow', 'good', 'diverged']
    """
    curves = np.asarray(curves, dtype=np.float64)
    diverged = np.asarray(diverged, dtype=bool)
    K, T = curves.shape
    labels = np.full(K, "good", dtype=object)
    safe = np.where(diverged[:, None], 0.0, np.nan_to_num(curves, nan=0.0))
    w = score_window(T)
    m = _running_mean(safe, w)
    head = np.minimum(safe[:, 0], m[:, 0])
    scale = np.maximum(np.abs(head), np.finfo(np.float64).tiny)
    tail = m[:, -1]
    half = safe[:, T // 2 :]
    jitter = np.abs(np.diff(half, axis=1)).mean(axis=1) if half.shape[1] > 1 else np.zeros(K)
    unstable = (
        (m.max(axis=1) - head > thresholds.spike * scale)
        | (tail - m.min(axis=1) > thresholds.rise * scale)
        | (jitter > thresholds.jitter * scale)
    )
    slow = head - tail < thresholds.slow * scale
    labels[slow] = "slow"
    labels[unstable] = "unstable"
    labels[diverged] = "diverged"
    return labels.astype(str)


def diagnose_ramp(
    smoothed: np.ndarray, stop_step: int, thresholds: Thresholds = DEFAULT
) -> np.ndarray:
    """Labels each step of a ramp from its smoothed curve (see the module doc)."""
    s = np.asarray(smoothed, dtype=np.float64)
    T = s.size
    labels = np.full(T, "good", dtype=object)
    stop = T if stop_step < 0 else int(stop_step)
    live = s[:stop]
    if live.size:
        scale = max(abs(live[0]), np.finfo(np.float64).tiny)
        run_min = np.minimum.accumulate(live)
        slow = live[0] - live < thresholds.slow * scale
        rising = live - run_min > thresholds.rise * scale
        labels[:stop][slow] = "slow"
        labels[:stop][rising] = "unstable"
    labels[stop:] = "diverged"
    return labels.astype(str)
