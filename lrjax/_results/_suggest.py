"""Learning-rate suggestions from a loss-vs-rate curve, as fastai defines them.

Each function takes increasing rates ``lrs`` and the matching ``losses`` (1-D,
finite) and returns ``(suggested_lr, (point_lr, point_loss))``, the point being
where fastai puts the marker on the plot. The rules are fastai's
(``fastai.callback.schedule``), written here in vectorised NumPy:

- ``minimum``: one tenth of the rate with the lowest loss. Conservative; use it
  when the curve is noisy or you want a safe rate.
- ``steep``: the rate where the loss falls fastest per unit of ``log(lr)``
  (steepest negative slope of consecutive points). Aggressive on smooth curves,
  fooled by noise.
- ``valley``: fastai's default. Takes the longest strictly decreasing
  subsequence of the loss (the "valley") and returns the rate about halfway
  (``int(n/3) + int(n/6)`` points) into it. Robust to noise; a good default.
- ``near_best`` (lrjax's, for the parallel test): the smallest rate of the
  contiguous run of rates around the lowest loss whose loss is within ``tol``
  (10%) of the curve's range above the lowest. A longer run than the test
  wants a lower rate than the test's best; this one is as good as the best
  within the test's noise. Chosen on ``benchmarks/suggestion_quality.py``.
- ``slide``: walks left from the largest rate, comparing the loss gradient (in
  steps of the curve) at points ``lr_diff`` apart, and stops where they agree
  within ``thresh``: the rate just left of where the curve turns upward. The
  threshold is in loss units, so it depends on the loss scale.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import numpy as np

Suggestion = tuple[float, tuple[float, float]]

METHODS = ("valley", "minimum", "steep", "slide")


def _curve(lrs: np.ndarray, losses: np.ndarray, need: int, method: str):
    lrs = np.asarray(lrs, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if lrs.ndim != 1 or lrs.shape != losses.shape:
        raise ValueError(
            f"lrs and losses must be 1-D and of equal length, got {lrs.shape} and {losses.shape}"
        )
    if lrs.size < need:
        raise ValueError(
            f"suggestion {method!r} needs at least {need} points on the curve, got {lrs.size}"
        )
    return lrs, losses


def _nearest(lrs: np.ndarray, lr: float) -> int:
    return int(np.argmin(np.abs(lrs - lr)))


def minimum(lrs: np.ndarray, losses: np.ndarray) -> Suggestion:
    """One tenth of the rate at the lowest loss."""
    lrs, losses = _curve(lrs, losses, 1, "minimum")
    lr_min = float(lrs[np.argmin(losses)])
    return lr_min / 10, (lr_min, float(losses[_nearest(lrs, lr_min)]))


def steep(lrs: np.ndarray, losses: np.ndarray) -> Suggestion:
    """The rate at the steepest descent of loss vs ``log(lr)``."""
    lrs, losses = _curve(lrs, losses, 2, "steep")
    slopes = np.diff(losses) / np.diff(np.log(lrs))
    lr = float(lrs[np.argmin(slopes)])
    return lr, (lr, float(losses[_nearest(lrs, lr)]))


def _decreasing_run_lengths(losses: np.ndarray) -> np.ndarray:
    """Length of the longest strictly decreasing subsequence ending at each index.

    Patience sorting on ``-losses``: ``tails[k]`` is the smallest last value of
    an increasing subsequence of length ``k + 1`` seen so far.
    """
    tails: list[float] = []
    out = np.empty(losses.size, dtype=np.int64)
    for i, x in enumerate(-losses):
        k = bisect.bisect_left(tails, x)
        out[i] = k + 1
        if k == len(tails):
            tails.append(x)
        else:
            tails[k] = x
    return out


def valley(lrs: np.ndarray, losses: np.ndarray) -> Suggestion:
    """Rate about halfway into the longest strictly decreasing stretch (fastai's default)."""
    lrs, losses = _curve(lrs, losses, 1, "valley")
    runs = _decreasing_run_lengths(losses)
    longest = int(runs.max())
    if longest == 1:  # nothing ever decreases: fastai keeps its initial (0, 0)
        start = end = 0
    else:
        end = int(np.argmax(runs))  # the first index reaching the longest run
        start = end - longest
    sections = (end - start) / 3
    idx = start + int(sections) + int(sections / 2)
    return float(lrs[idx]), (float(lrs[idx]), float(losses[idx]))


def slide(
    lrs: np.ndarray,
    losses: np.ndarray,
    lr_diff: int = 15,
    thresh: float = 0.005,
    adjust_value: float = 1.0,
) -> Suggestion:
    """fastai's interval slide rule (needs more than ``lr_diff`` points)."""
    if isinstance(lr_diff, bool) or not isinstance(lr_diff, (int, np.integer)) or lr_diff < 1:
        raise ValueError(f"lr_diff must be an int >= 1, got {lr_diff!r}")
    lrs, losses = _curve(lrs, losses, lr_diff + 1, "slide")
    n = lrs.size
    grad = np.gradient(losses)
    # Pairs (right, left) = (n-1-k, n-1-lr_diff-k) for k = 0 .. n-1-lr_diff; the
    # walk continues while the gradients there differ by more than thresh.
    right = grad[lr_diff:][::-1]
    left = grad[: n - lr_diff][::-1]
    keep_going = np.abs(right - left) > thresh
    stops = np.flatnonzero(~keep_going)
    k_stop = int(stops[0]) if stops.size else keep_going.size
    local = float(lrs[n - 1 - lr_diff - max(k_stop - 1, 0)])
    lr = local * adjust_value
    point = float(np.interp(np.log10(lr), np.log10(lrs), losses))
    return lr, (lr, point)


def near_best(lrs: np.ndarray, losses: np.ndarray, tol: float = 0.1) -> Suggestion:
    """The smallest rate of the run around the lowest loss within ``tol`` of its range."""
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol <= 1:
        raise ValueError(f"tol must be a number in [0, 1], got {tol!r}")
    lrs, losses = _curve(lrs, losses, 1, "near_best")
    b = int(np.argmin(losses))
    close = losses - losses[b] <= tol * (losses.max() - losses[b])
    i = b
    while i > 0 and close[i - 1]:
        i -= 1
    return float(lrs[i]), (float(lrs[i]), float(losses[i]))


FUNCTIONS: dict[str, Callable[..., Suggestion]] = {
    "valley": valley,
    "minimum": minimum,
    "steep": steep,
    "slide": slide,
    "near_best": near_best,
}

#: Options each method takes.
OPTIONS = {"slide": ("lr_diff", "thresh", "adjust_value"), "near_best": ("tol",)}


def suggest(method: str, lrs: np.ndarray, losses: np.ndarray, **kwargs) -> Suggestion:
    """Dispatches to the named method (``valley``, ``minimum``, ``steep``, ``slide``)."""
    if method not in FUNCTIONS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    unknown = sorted(set(kwargs) - set(OPTIONS.get(method, ())))
    if unknown:
        raise TypeError(f"suggestion {method!r} takes no options {unknown}")
    return FUNCTIONS[method](lrs, losses, **kwargs)
