"""Bounding a search's rate dimension with a short range test before it starts.

A user who does not know the learning rate gives a wide range, partly
diverging; random draws over it waste most members. :func:`lrjax.tune` first
trains :func:`rate_test_points` copies side by side for ``test_steps`` steps
(the first steps of the real run, on the same batches), the rate dimension
log-spaced over its range and every other dimension at its centre
(:func:`probe_grid`), and :func:`narrow` keeps the part of the range where
copies trained well. The search then draws, resamples and clips the rate
within the narrowed range.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lrjax._rules import scale_to_run
from lrjax._search._space import centre

#: Dimension names taken as the rate when ``tune(rate=None)``.
RATE_NAMES = ("lr", "learning_rate")
#: The most copies the rate test trains (fewer with a smaller population).
RATE_TEST_POINTS = 16
#: The rate test trains this fraction of the run's steps (``num_steps // 8``).
RATE_TEST_FRACTION = 8
#: A rate above the best fails the test when it loses more than this fraction
#: of the best rate's progress (see :func:`narrow`).
FAILED_FRACTION = 0.5
#: The narrowed range's low end: the best tested rate scaled for the run's
#: length, divided by this margin (see :func:`narrow`).
LOW_MARGIN = 3.0


def find_rate(
    rate: Any, names: tuple[str, ...], kinds: tuple[str, ...], bounds: dict
) -> str | None:
    """The name of the dimension the rate test bounds, or ``None`` (no test).

    ``rate=None``: the first dimension named as in :data:`RATE_NAMES` whose
    range is numeric and positive (none: no test); ``False``: no test; a
    name: that dimension (a ValueError unless it is a positive range).

    Example:
      >>> import numpy as np
      >>> b = {"lr": np.array([1e-4, 1.0]), "wd": np.array([0.0, 0.1])}
      >>> find_rate(None, ("lr", "wd"), ("log", "uniform"), b)
      'lr'
      >>> find_rate(False, ("lr", "wd"), ("log", "uniform"), b) is None
      True
    """
    if rate is None:
        for name, kind in zip(names, kinds):
            if name in RATE_NAMES and kind != "choice" and bounds[name][0] > 0:
                return name
        return None
    if rate is False:
        return None
    if not isinstance(rate, str):
        raise TypeError(f"rate must be a dimension name of space, None or False, got {rate!r}")
    if rate not in names:
        raise ValueError(f"rate={rate!r} is not a dimension of space (its names: {list(names)})")
    kind = kinds[names.index(rate)]
    if kind == "choice" or not bounds[rate][0] > 0:
        what = "a choice" if kind == "choice" else f"a range from {bounds[rate][0]:g}"
        raise ValueError(
            f"rate={rate!r} must name a range with low > 0, such as ('log', 1e-5, 1.0); "
            f"space[{rate!r}] is {what}"
        )
    return rate


def rate_test_points(population: int) -> int:
    """Copies the rate test trains: the population, at most :data:`RATE_TEST_POINTS`.

    Example:
      >>> rate_test_points(8), rate_test_points(40)
      (8, 16)
    """
    return min(population, RATE_TEST_POINTS)


def default_test_steps(num_steps: int) -> int:
    """The rate test's default length: an eighth of the run (at least 1 step).

    Example:
      >>> default_test_steps(240), default_test_steps(4)
      (30, 1)
    """
    return max(1, num_steps // RATE_TEST_FRACTION)


def probe_grid(
    names: tuple[str, ...], kinds: tuple[str, ...], bounds: dict, rate: str, points: int
) -> dict[str, np.ndarray]:
    """The rate test's settings: ``rate`` log-spaced over its range, the rest at
    their :func:`centre`.

    Example:
      >>> import numpy as np
      >>> g = probe_grid(("lr", "m"), ("log", "uniform"),
      ...                {"lr": np.array([1e-3, 1e-1]), "m": np.array([0.0, 0.9])}, "lr", 3)
      >>> g["lr"].round(6).tolist(), g["m"].tolist()
      ([0.001, 0.01, 0.1], [0.45, 0.45, 0.45])
    """
    grid = {}
    for name, kind in zip(names, kinds):
        bound = bounds[name]
        if name == rate:
            values = np.geomspace(float(bound[0]), float(bound[1]), points)
        else:
            values = np.full(points, centre(kind, bound))
        grid[name] = values.astype(bound.dtype)
    return grid


def narrow(
    rates: np.ndarray,
    scores: np.ndarray,
    diverged: np.ndarray,
    low: float,
    high: float,
    test_steps: int,
    num_steps: int,
) -> tuple[float, float]:
    """The part of ``[low, high]`` where the rate test's copies trained well.

    - High end: halfway (on the log scale) from the last good rate to the
      first failed one: the lowest tested rate above the best that failed
      within the test's steps, so within the real run too (those steps are its
      first ones): it diverged, or it lost more than half of the best rate's
      progress (its score is above the midpoint between the best score and
      the lowest tested rate's, which barely moves the parameters: the
      starting point's score on the same batches); ``high`` if none failed.
    - Low end: the best tested rate (lowest score) times ``test_steps /
      num_steps`` (the best constant rate falls about in proportion to a
      run's length, as in :meth:`lrjax.RangeTestResult.suggest_for`),
      divided by :data:`LOW_MARGIN`; at least ``low``.

    When no copy trained (every one failed), the range is kept as it is.

    Example:
      >>> import numpy as np
      >>> rates = np.geomspace(1e-4, 10, 6)  # 1e-4, 1e-3, ..., 10
      >>> scores = np.array([2.0, 1.5, 0.6, 0.4, 1.3, np.inf])  # 1.3: lost 2/3 of it
      >>> diverged = np.array([False, False, False, False, False, True])
      >>> lo, hi = narrow(rates, scores, diverged, 1e-4, 10.0, test_steps=30, num_steps=240)
      >>> round(lo, 6), round(hi, 6)  # from the best / 8 / 3 to between 0.1 and 1
      (0.004167, 0.316228)
    """
    rates = np.asarray(rates, np.float64)
    scores = np.asarray(scores, np.float64)
    bad = np.asarray(diverged, bool) | ~np.isfinite(scores)
    if bad.all():
        return float(low), float(high)
    best = int(np.argmin(np.where(bad, np.inf, scores)))
    baseline = scores[np.argmin(rates)]
    with np.errstate(invalid="ignore"):
        limit = scores[best] + FAILED_FRACTION * (baseline - scores[best])
        failed = bad | (np.isfinite(baseline) & ~(scores <= limit))
    above = np.flatnonzero(failed & (rates > rates[best]))
    hi = float(high)
    if above.size:
        first = float(rates[above].min())
        last_good = float(rates[~failed & (rates < first)].max())  # the best at least
        hi = math.sqrt(first * last_good)
    lo = scale_to_run(rates[best], test_steps, num_steps) / LOW_MARGIN
    return max(float(low), lo), min(float(high), hi)
