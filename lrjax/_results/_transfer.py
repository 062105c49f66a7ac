"""`TransferResult`: the best rate at a size too large to sweep, from sweeps at small sizes.

NumPy only (matplotlib when plotting). The analysis, in order; each choice was
measured on synthetic curves (``tests/test_transfer_analysis.py`` asserts the
coverages):

1. **Each size's optimum from its curve.** In ``x = log(rate)``, the mean score
   over seeds (a rate where any seed diverged counts as diverged). A parabola
   least-squares fitted to the finite points within :data:`WINDOW_DECADES` of
   the argmin (at least one grid point each side) gives the optimum at its
   vertex when it is convex and the vertex lies within those points; else the
   optimum is the argmin. An argmin at the first or last finite rate is *at
   the edge*: the optimum may lie beyond what was tested.
2. **Intervals: a parametric bootstrap.** Each replicate redraws every size's
   mean curve around the measured one with the seeds' noise and recomputes
   everything from it: the optimum (argmin, window, vertex; an argmin
   fallback spread uniformly over its grid cell), the rule's choice on the
   held-out size, the law on every size, the target's rate. Intervals are
   percentiles over the replicates. The noise variance is pooled over the fit
   window from the seeds' residuals after removing each seed's offset (an
   offset shared by a seed's whole curve does not move the optimum), and each
   replicate draws its own variance from that estimate's scaled
   inverse-chi-square law: with two seeds the plug-in variance covered 68%,
   the drawn one 80-82%. With one seed the parabola's residuals stand in (no
   interval when the window has only 3 points). Seeds are not resampled: two
   or three seeds give too few distinct resamples.
3. **The rules** (:data:`RULES`), each a line ``log r* = a + alpha log size``:
   ``"fit"``: ordinary least squares over the sizes (weighting by each
   optimum's bootstrap spread cut the error where the sizes' noise differed
   12-fold, but raised it at equal noise with two seeds, and its intervals
   covered 74-82%: the weights come from the same noise); ``"theory"``:
   ``alpha`` = :data:`THEORY_EXPONENT` through the largest size's optimum;
   ``"shrunk"``: the fitted ``alpha`` combined by precision with a normal prior
   on it, mean the theory's and standard deviation :data:`SHRINK_PRIOR_SD`
   (the fit's own standard deviation from the bootstrap), through the largest
   size's optimum; ``"reuse"``: ``alpha = 0``. Each is defined from 2 sizes
   (theory and reuse from 1).
4. **The choice** (``rule="auto"``): hold out the largest usable size, fit each
   rule on the others, and score its prediction by the excess
   ``(L(pred) - L*) / (L0 - L*)`` on the held-out mean curve
   (:func:`holdout_excess`). The lowest wins among the candidates: a fixed
   exponent (theory's, reuse's 0) is one unless the fitted exponent's
   :data:`ELIGIBLE_LEVEL` interval excludes it. Near-ties go to the first in
   :data:`PREFERENCE`: excesses within :data:`TIE_TOLERANCE` once projected to
   the target (:func:`reach`). The chosen rule is refitted on every size.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from lrjax._checks import check_choice, check_count, check_finite
from lrjax._results import _plots
from lrjax._results._score import seed_scores
from lrjax._results._sweep import from_json, json_scalar, to_json

#: The rules, in the order the result lists them.
RULES = ("fit", "theory", "shrunk", "reuse")
#: Near-ties in the held-out excess go to the first of these: the fixed exponents
#: first (they estimate nothing from the trend; the theory before reuse, the
#: issue's worst rule), then the fitted exponent, then the shrunk one (it lies
#: between the fit and the theory, so a tie with it is mostly a tie with them).
PREFERENCE = ("theory", "reuse", "fit", "shrunk")
#: The theory's exponent along each axis: along steps the best constant rate falls
#: in proportion to the run's length (as ``RangeTestResult.suggest_for``); along
#: width, muP's rule for Adam (the hidden layers' rate in proportion to 1/width).
THEORY_EXPONENT = {"width": -1.0, "steps": -1.0}
#: The prior's standard deviation on the exponent for ``"shrunk"``, centred on the
#: theory's: the exponents measured on issue 29's eight problems span -0.15 to -0.8.
SHRINK_PRIOR_SD = 0.5
#: Held-out excesses closer than this to the lowest, once projected to the target
#: (:func:`reach`), are a tie (the issue's benchmark calls a rate within 0.02
#: excess good; half that is no difference).
TIE_TOLERANCE = 0.01
#: Rules whose held-out excess, projected to the target, is within this of the
#: lowest predicted the held-out size about as well: their disagreement at the
#: target beyond its interval is warned about. Chosen by ``benchmarks/transfer.py``
#: among its candidates: the fewest misses at the target left without a warning.
DISAGREE_MARGIN = 0.05
#: The parabola is fitted to the finite points within this many decades of the
#: argmin (at least one grid point each side): wider windows average more noise
#: but bias the vertex towards the flat side of an asymmetric curve (a loss that
#: rises faster towards divergence than towards small rates). Measured on
#: synthetic curves whose curvature doubles every 0.3 decade: +-0.5 decade
#: biases the vertex by about 0.06 decade, two grid points of the default grid
#: (+-0.93 decade) by 0.23.
WINDOW_DECADES = 0.5
#: A fixed exponent (the theory's, reuse's 0) is a candidate for ``rule="auto"``
#: unless the measured exponent's interval at this level excludes it: the
#: fitted exponent uses every size, a far stronger test of the trend than one
#: held-out size (with two seeds the holdout alone picked a fixed rule for most
#: synthetic laws of exponent -0.5).
ELIGIBLE_LEVEL = 0.99
#: Bootstrap replicates by default.
DEFAULT_BOOTSTRAP = 2000
ALONG = ("width", "steps")


# ---------------------------------------------------------------- scores


def mean_curve(scores: np.ndarray) -> np.ndarray:
    """``[..., K]`` mean over the seed axis (-2); ``inf`` where any seed is not finite."""
    scores = np.asarray(scores, np.float64)
    bad = ~np.isfinite(scores).all(axis=-2)
    with np.errstate(invalid="ignore"):
        return np.where(bad, np.inf, np.where(np.isfinite(scores), scores, 0.0).mean(-2))


# ---------------------------------------------------------------- optimum


class Vertex(NamedTuple):
    """Each curve's optimum (arrays over the curves' leading axes).

    Attributes:
      x: the optimum's log-rate (NaN where no rate is finite).
      argmin: the index of the lowest finite point (0 where none).
      fitted: the optimum is the parabola's vertex (else the argmin).
      coef: ``[..., 3]`` the parabola ``c + b t + a t^2`` in ``t = (x - x[argmin]) / step``
        (its value ``c`` relative to the argmin's score).
      lo, hi: the window's finite log-rates, lowest and highest.
      count: finite points in the window.
      rss: the parabola's residual sum of squares.
    """

    x: np.ndarray
    argmin: np.ndarray
    fitted: np.ndarray
    coef: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    count: np.ndarray
    rss: np.ndarray


def grid_step(x: np.ndarray) -> float:
    """The grid's mean spacing in log-rate (1.0 for a single rate)."""
    return float((x[-1] - x[0]) / (x.size - 1)) if x.size > 1 else 1.0


def window_points(x: np.ndarray) -> int:
    """Grid points each side of the argmin in the fit window (:data:`WINDOW_DECADES`)."""
    # the points within the half-width (1e-9: a grid of exactly that spacing counts)
    return max(1, math.floor(WINDOW_DECADES * math.log(10) / grid_step(x) + 1e-9))


def fit_window(
    x: np.ndarray, argmin: np.ndarray, finite: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(index, ok)``, each ``[..., 2W + 1]``: the grid points of each curve's fit
    window around its ``argmin`` (indices clipped to the grid), and which of them
    lie on the grid and are ``finite`` (``[..., K]``)."""
    W = window_points(x)
    index = argmin[..., None] + np.arange(-W, W + 1)
    clipped = np.clip(index, 0, x.size - 1)
    ok = (index >= 0) & (index < x.size) & np.take_along_axis(finite, clipped, -1)
    return clipped, ok


def fit_parabola(
    t: np.ndarray, y: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(coef [..., 3], solvable, rss)``: the least-squares parabola ``c + b t + a t^2``
    through the ``ok`` points of ``(t, y)`` (``[..., P]``, zero elsewhere), its
    residual sum of squares; zeros where fewer than 3 points or a singular system.

    The normal equations are solved in closed form for every curve at once (``t``
    is centred and scaled, near-integer: the sums are well conditioned).
    """
    t2 = t * t
    s0, s1, s2 = ok.sum(-1).astype(np.float64), t.sum(-1), t2.sum(-1)
    s3, s4 = (t2 * t).sum(-1), (t2 * t2).sum(-1)
    r0, r1, r2 = y.sum(-1), (t * y).sum(-1), (t2 * y).sum(-1)
    m0, m1, m2 = s2 * s4 - s3 * s3, s1 * s4 - s2 * s3, s1 * s3 - s2 * s2
    det = s0 * m0 - s1 * m1 + s2 * m2
    solvable = (ok.sum(-1) >= 3) & (det > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(solvable, det, 1.0)
        c = (r0 * m0 - s1 * (r1 * s4 - s3 * r2) + s2 * (r1 * s3 - s2 * r2)) / d
        b = (s0 * (r1 * s4 - s3 * r2) - r0 * m1 + s2 * (s1 * r2 - r1 * s2)) / d
        a = (s0 * (s2 * r2 - r1 * s3) - s1 * (s1 * r2 - r1 * s2) + r0 * m2) / d
    c, b, a = (np.where(solvable, e, 0.0) for e in (c, b, a))
    resid = c[..., None] + b[..., None] * t + a[..., None] * t2 - y
    rss = np.where(solvable, (resid * resid * ok).sum(-1), 0.0)
    return np.stack([c, b, a], axis=-1), solvable, rss


def vertex(x: np.ndarray, curves: np.ndarray) -> Vertex:
    """The optimum of each curve ``[..., K]`` over log-rates ``x [K]`` (see the module)."""
    curves = np.asarray(curves, np.float64)
    step = grid_step(x)
    finite = np.isfinite(curves)
    j = np.argmin(np.where(finite, curves, np.inf), axis=-1)
    index, ok = fit_window(x, j, finite)
    # the window in grid steps from the argmin, its scores above the argmin's
    xj = x[j]
    t = np.where(ok, (x[index] - xj[..., None]) / step, 0.0)
    with np.errstate(invalid="ignore"):
        y_j = np.take_along_axis(curves, j[..., None], -1)
        y = np.where(ok, np.take_along_axis(curves, index, -1) - y_j, 0.0)
    coef, solvable, rss = fit_parabola(t, y, ok)
    b, a = coef[..., 1], coef[..., 2]
    t_lo = np.where(ok, t, np.inf).min(-1)
    t_hi = np.where(ok, t, -np.inf).max(-1)
    convex = solvable & (a > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(convex, -b / (2 * np.where(convex, a, 1.0)), 0.0)
    fitted = convex & (v >= t_lo) & (v <= t_hi)
    any_finite = finite.any(-1)
    return Vertex(
        x=np.where(any_finite, np.where(fitted, xj + step * v, xj), np.nan),
        argmin=j,
        fitted=fitted & any_finite,
        coef=coef,
        lo=xj + step * t_lo,
        hi=xj + step * t_hi,
        count=ok.sum(-1),
        rss=rss,
    )


def edge_kind(curve: np.ndarray) -> str | None:
    """Where a mean curve's argmin sits: ``"low"`` / ``"high"`` (the grid's ends),
    ``"below_diverged"`` / ``"above_diverged"`` (next to diverged rates), or ``None``."""
    finite = np.flatnonzero(np.isfinite(curve))
    if not finite.size:
        return None
    j = int(np.argmin(np.where(np.isfinite(curve), curve, np.inf)))
    if j == 0:
        return "low"
    if j == curve.size - 1:
        return "high"
    if j == finite[-1]:
        return "below_diverged"
    if j == finite[0]:
        return "above_diverged"
    return None


# ---------------------------------------------------------------- bootstrap


def seed_residuals(scores: np.ndarray, index: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``[..., S, P]`` the scores ``[..., S, K]`` at a fit window's points (``index``
    and ``ok`` from :func:`fit_window`) less each seed's and each rate's mean, plus
    the grand mean (zero outside the window)."""
    S = scores.shape[-2]
    index_s = np.broadcast_to(index[..., None, :], (*index.shape[:-1], S, index.shape[-1]))
    m = ok[..., None, :]
    Y = np.where(m, np.take_along_axis(scores, index_s, -1), 0.0)
    n_safe = np.maximum(ok.sum(-1), 1)[..., None, None]
    row = Y.sum(-1, keepdims=True) / n_safe
    col = Y.sum(-2, keepdims=True) / S
    grand = row.sum(-2, keepdims=True) / S
    return np.where(m, Y - row - col + grand, 0.0)


def noise(x: np.ndarray, scores: np.ndarray, v: Vertex) -> tuple[np.ndarray, np.ndarray]:
    """``(variance of the mean curve at a rate, degrees of freedom)`` per curve.

    ``scores [..., S, K]``; ``v`` the mean curve's :func:`vertex`. Pooled over
    the fit window: with ``S >= 2`` seeds, the residuals after removing each
    seed's and each rate's mean (``(S - 1)(n - 1)`` degrees of freedom for
    ``n`` window points), divided by ``S``; with one seed, the parabola's
    residuals (``n - 3``). Zero degrees of freedom: no estimate (variance 0).
    """
    scores = np.asarray(scores, np.float64)
    S = scores.shape[-2]
    index, ok = fit_window(x, v.argmin, np.isfinite(mean_curve(scores)))
    n = ok.sum(-1)
    if S == 1:
        df, squares = np.maximum(n - 3, 0), v.rss
    else:
        df = (S - 1) * np.maximum(n - 1, 0)
        squares = (seed_residuals(scores, index, ok) ** 2).sum((-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(df > 0, squares / np.maximum(df, 1) / S, 0.0)
    return var, df


def replicate_optima(
    x: np.ndarray,
    curve: np.ndarray,
    var: np.ndarray,
    df: np.ndarray,
    num: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``(optima [..., num], curves [..., num, K])``: bootstrap replicates.

    Each redraws the mean curve ``[..., K]`` with a variance drawn from
    ``var * df / chi2(df)`` and recomputes its :func:`vertex`; an argmin
    fallback is spread uniformly over its grid cell.
    """
    curve = np.asarray(curve, np.float64)
    lead = curve.shape[:-1]
    chi = rng.chisquare(np.maximum(df, 1)[..., None], size=(*lead, num))
    sig2 = np.where(df[..., None] > 0, var[..., None] * df[..., None] / chi, 0.0)
    z = rng.standard_normal((*lead, num, x.size))
    with np.errstate(invalid="ignore"):
        draws = curve[..., None, :] + np.sqrt(sig2)[..., None] * z
    v = vertex(x, draws)
    cell = rng.uniform(-0.5, 0.5, size=(*lead, num)) * grid_step(x)
    return np.where(v.fitted, v.x, v.x + cell), draws


def percentiles(reps: np.ndarray, level: float) -> np.ndarray:
    """``[..., 2]`` the central ``level`` percentile interval over the last axis."""
    q = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2], axis=-1)
    return np.moveaxis(q, 0, -1)


def spread(reps: np.ndarray) -> float:
    """A robust standard deviation: half the 16-84% range."""
    lo, hi = np.quantile(reps, [0.15865, 0.84135])
    return float(hi - lo) / 2


# ---------------------------------------------------------------- rules


def law(
    rule: str, u: np.ndarray, y: np.ndarray, theory: float, slope_sd: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(intercept, exponent)`` of ``rule``'s line ``log r* = a + alpha log size``.

    Args:
      rule: one of :data:`RULES`.
      u: ``[m]`` log sizes, ascending.
      y: ``[..., m]`` log optima.
      theory: the theory's exponent.
      slope_sd: the fitted exponent's standard deviation (``"shrunk"`` only).

    ``"fit"`` and ``"shrunk"`` need two sizes (NaN with one); the others one.
    """
    y = np.asarray(y, np.float64)
    if rule in ("fit", "shrunk"):
        if u.size < 2:
            nan = np.full(y.shape[:-1], np.nan)
            return nan, nan
        du = u - u.mean()
        slope = (y * du).sum(-1) / (du * du).sum()
        if rule == "fit":
            return y.mean(-1) - slope * u.mean(), slope
        # the prior N(theory, SHRINK_PRIOR_SD^2) and the fit N(slope, slope_sd^2), by precision
        keep = SHRINK_PRIOR_SD**2 / (SHRINK_PRIOR_SD**2 + slope_sd**2)
        slope = theory + keep * (slope - theory)
    elif rule == "theory":
        slope = np.full(y.shape[:-1], theory)
    elif rule == "reuse":
        slope = np.zeros(y.shape[:-1])
    else:  # pragma: no cover - checked by the callers
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    return y[..., -1] - slope * u[-1], slope


def at(line: tuple[np.ndarray, np.ndarray], u: float) -> np.ndarray:
    """A law ``(intercept, exponent)``'s log-rate at log size ``u``."""
    return line[0] + line[1] * u


def linear_at(
    x: np.ndarray, curves: np.ndarray, x_pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(value, checked)``: the curves ``[..., K]`` interpolated linearly in log-rate
    at ``x_pred [..., R]``, and where that is a measurement (on a finite rate, or
    between two finite rates)."""
    finite = np.isfinite(curves)
    with np.errstate(invalid="ignore"):
        k = np.clip(np.searchsorted(x, x_pred, side="right"), 1, x.size - 1)
        t = (x_pred - x[k - 1]) / (x[k] - x[k - 1])
    f0, f1 = np.take_along_axis(finite, k - 1, -1), np.take_along_axis(finite, k, -1)
    y0, y1 = np.take_along_axis(curves, k - 1, -1), np.take_along_axis(curves, k, -1)
    checked = (t >= 0) & (t <= 1) & ((f0 & f1) | ((t == 0) & f0) | ((t == 1) & f1))
    with np.errstate(invalid="ignore"):
        value = np.where(t == 0, y0, np.where(t == 1, y1, y0 + t * (y1 - y0)))
    return value, checked


def parabola_at(
    x: np.ndarray, curves: np.ndarray, x_pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(value, in_window, low)``: each curve's fitted parabola (:func:`vertex`) at
    ``x_pred [..., R]``, where that lies in its fit window (when the optimum is a
    vertex), and ``L*`` (``[..., 1]``): the lower of the parabola's minimum and the
    curve's."""
    v = vertex(x, curves)
    yj = np.take_along_axis(curves, v.argmin[..., None], -1)  # [..., 1]
    c, b, a = (v.coef[..., i : i + 1] for i in range(3))
    fitted = v.fitted[..., None]
    tt = (x_pred - x[v.argmin][..., None]) / grid_step(x)
    in_window = fitted & (x_pred >= v.lo[..., None]) & (x_pred <= v.hi[..., None])
    with np.errstate(invalid="ignore", divide="ignore"):
        value = yj + c + b * tt + a * tt * tt
        low = np.where(fitted, np.minimum(yj, yj + c - b * b / (4 * np.where(fitted, a, 1))), yj)
    return value, in_window, low


def holdout_excess(
    x: np.ndarray, curves: np.ndarray, init_loss: float, x_pred: np.ndarray
) -> np.ndarray:
    """The excess ``(L(pred) - L*) / (L0 - L*)`` of log-rates ``x_pred [..., R]`` on the
    mean curves ``[..., K]`` over log-rates ``x`` (``R`` predictions per curve).

    Within the fit window of a curve's optimum (when it is a vertex) ``L`` is
    the fitted parabola and ``L*`` its minimum: linear interpolation between
    grid points would favour predictions on grid points by up to a quarter of
    the curvature times the squared grid step. Elsewhere ``L`` is interpolated
    linearly in log-rate and ``L*`` is the lower of the parabola's minimum and
    the curve's. ``L0`` is ``init_loss`` (the curve's largest finite value if
    NaN or not above ``L*``). A prediction that cannot be checked - outside the
    finite rates, or between a finite and a diverged rate - scores 1 (no better
    than not training) plus its distance in decades from the nearest finite rate.
    """
    curves = np.asarray(curves, np.float64)
    x_pred = np.asarray(x_pred, np.float64)
    finite = np.isfinite(curves)
    linear, checked = linear_at(x, curves, x_pred)
    fitted, in_window, low = parabola_at(x, curves, x_pred)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(in_window, fitted, linear)
        top_curve = np.where(finite, curves, -np.inf).max(-1, keepdims=True)
        top = np.where(np.isfinite(init_loss) & (init_loss > low), init_loss, top_curve)
        excess = np.where(top > low, np.maximum(0.0, (value - low) / (top - low)), 0.0)
        # [..., R]: each prediction's distance to the nearest finite rate
        dist = np.where(finite[..., None, :], np.abs(x - x_pred[..., None]), np.inf).min(-1)
    excess = np.where(checked, excess, 1.0 + dist / math.log(10))
    return np.where(finite.any(-1, keepdims=True) & np.isfinite(x_pred), excess, np.nan)


def choose(excess: np.ndarray, allowed: np.ndarray, tie: float) -> np.ndarray:
    """The index in :data:`RULES` of the chosen rule, per row of ``excess [..., 4]``.

    Among the ``allowed`` rules with a finite excess, the lowest; excesses
    within ``tie`` of it go to the first of them in :data:`PREFERENCE`
    (``"fit"`` where no rule is allowed and scored).
    """
    e = np.where(allowed & np.isfinite(excess), excess, np.inf)
    best = e.min(-1, keepdims=True)
    within = np.isfinite(e) & (e <= best + tie)
    order = np.array([RULES.index(r) for r in PREFERENCE])
    first = order[np.argmax(within[..., order], axis=-1)]
    return np.where(within.any(-1), first, RULES.index("fit"))


def reach(u: np.ndarray, u_target: float) -> float:
    """How far the target lies from the largest size, in units of the holdout's step
    (``|log(target / largest)| / log(largest / second largest)``, at least 1).

    A rule's error grows about in proportion to the distance it extrapolates,
    and a parabola's excess with the error's square: held-out excesses that
    differ by ``d`` differ by about ``d * reach**2`` at the target.
    """
    return max(1.0, abs(u_target - u[-1]) / (u[-1] - u[-2]))


# ---------------------------------------------------------------- the analysis


class Analysis(NamedTuple):
    """Every number :class:`TransferResult` reports (see its attributes)."""

    rate: float
    interval: tuple[float, float]
    rule: str
    reason: str
    exponent: float
    exponent_interval: tuple[float, float]
    fitted_exponent: float
    fitted_exponent_interval: tuple[float, float]
    laws: dict[str, tuple[float, float]]
    optima: np.ndarray
    optima_intervals: np.ndarray
    at_edge: np.ndarray
    predictions: dict[str, float]
    holdout_excess: dict[str, float]
    rule_shares: dict[str, float]
    warnings: tuple[str, ...]


NAN2 = (math.nan, math.nan)


def _pair(v: Any) -> tuple[float, float]:
    return (float(v[0]), float(v[1]))


class SizeOptima(NamedTuple):
    """Each size's optimum and its bootstrap replicates (steps 1 and 2 of the module).

    Attributes:
      curves: per size, ``[K]`` the mean curve over seeds.
      x: ``[n]`` each optimum's log-rate (NaN where every rate diverged).
      reps: ``[n, B]`` the optimum's log-rate in each replicate.
      draws: per size, ``[B, K]`` the replicates' mean curves (``None`` where
        every rate diverged).
      noisy: ``[n]`` the seeds' noise could be measured (else the size has no
        interval).
      edges: per size, where the argmin sits (:func:`edge_kind`).
    """

    curves: list[np.ndarray]
    x: np.ndarray
    reps: np.ndarray
    draws: list[np.ndarray | None]
    noisy: np.ndarray
    edges: list[str | None]


def size_optima(
    rates: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
    bootstrap: int,
    rng: np.random.Generator,
) -> SizeOptima:
    """Each size's optimum from its curve and ``bootstrap`` replicates of it."""
    n = len(rates)
    curves = [mean_curve(s) for s in scores]
    x_opt, reps = np.full(n, np.nan), np.full((n, bootstrap), np.nan)
    draws: list[np.ndarray | None] = [None] * n
    noisy = np.zeros(n, bool)
    for i in np.flatnonzero([np.isfinite(c).any() for c in curves]):
        x = np.log(rates[i])
        v = vertex(x, curves[i])
        var, df = noise(x, scores[i], v)
        x_opt[i] = float(v.x)
        noisy[i] = bool(df > 0)
        reps[i], draws[i] = replicate_optima(x, curves[i], var, df, bootstrap, rng)
    return SizeOptima(curves, x_opt, reps, draws, noisy, [edge_kind(c) for c in curves])


def size_notes(sizes: np.ndarray, found: SizeOptima, at_edge: np.ndarray) -> list[str]:
    """The warnings about single sizes: every rate diverged, no noise measured, the
    optimum at the edge of the rates tried."""
    usable = np.isfinite(found.x)
    notes = [
        f"size {s:g}: every rate diverged; it is left out of the fit "
        "(lower min_lr, or check the runs at this size)"
        for s in sizes[~usable]
    ]
    notes += [
        f"size {s:g}: one seed and too few rates near the best to measure "
        "the noise: no interval (use seeds >= 2)"
        for s in sizes[usable & ~found.noisy]
    ]
    optima = np.exp(found.x)
    notes += [
        _edge_note(found.edges[i], float(sizes[i]), float(optima[i]))
        for i in np.flatnonzero(at_edge)
    ]
    return notes


class PerSize(NamedTuple):
    """The per-size numbers :class:`TransferResult` reports (see its attributes)."""

    optima: np.ndarray
    optima_intervals: np.ndarray
    at_edge: np.ndarray


def optima_intervals(found: SizeOptima, level: float) -> np.ndarray:
    """``[n, 2]`` each optimum's bootstrap interval (NaN where none was measured)."""
    out = np.full((found.x.size, 2), np.nan)
    for i in np.flatnonzero(np.isfinite(found.x) & found.noisy):
        out[i] = np.exp(percentiles(found.reps[i], level))
    return out


class Laws(NamedTuple):
    """Every rule's law on the usable sizes, and on each replicate's optima."""

    point: dict[str, tuple[float, float]]  # {rule: (a, alpha)}
    reps: list[tuple[np.ndarray, np.ndarray]]  # per rule in RULES: ([B] a, [B] alpha)
    fit_reps: np.ndarray  # [B] the fitted exponent in each replicate


def fit_laws(u: np.ndarray, y: np.ndarray, y_reps: np.ndarray, theory: float) -> Laws:
    """Every rule (:func:`law`) on log sizes ``u [m]`` and log optima ``y [m]``, and
    refitted on each replicate's own optima ``y_reps [B, m]``."""
    fit_reps = law("fit", u, y_reps, theory)[1]
    slope_sd = spread(fit_reps)
    point = {}
    reps = []
    for r in RULES:
        a, alpha = law(r, u, y, theory, slope_sd)
        point[r] = (float(a), float(alpha))
        reps.append(law(r, u, y_reps, theory, slope_sd))
    return Laws(point, reps, fit_reps)


def eligible(
    slope: np.ndarray, slope_fit: float, bounds: tuple[float, float], theory: float
) -> np.ndarray:
    """``[..., 4]`` which rules ``rule="auto"`` may choose for fitted exponent(s)
    ``slope``: a fixed exponent (the theory's, reuse's 0) unless the measured
    exponent's :data:`ELIGIBLE_LEVEL` interval ``bounds`` (around ``slope_fit``,
    shifted to each ``slope``: a replicate asks the same of its own) excludes it."""
    fixed = np.array([theory if r == "theory" else 0.0 for r in RULES])
    is_fixed = np.array([r in ("theory", "reuse") for r in RULES])
    lo = slope[..., None] - (slope_fit - bounds[0])
    hi = slope[..., None] + (bounds[1] - slope_fit)
    # (1e-9: exact optima give a zero-width interval, equal to a fixed exponent up to rounding)
    return ~is_fixed | ((fixed >= lo - 1e-9) & (fixed <= hi + 1e-9))


def score_holdout(
    u: np.ndarray,
    rates: Sequence[np.ndarray],
    found: SizeOptima,
    init_losses: np.ndarray,
    usable: np.ndarray,
    theory: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``(excess [4], excess [B, 4])``: each rule fitted on the ``usable`` sizes but
    the largest predicts the largest, scored on its mean curve; and the same in
    each replicate (its own optima, its own curve)."""
    held, rest = usable[-1], usable[:-1]
    rest_reps = found.reps[rest].T
    sd_rest = spread(law("fit", u[rest], rest_reps, theory)[1]) if rest.size >= 2 else 0.0

    def at_held(y: np.ndarray) -> np.ndarray:  # [..., 4] each rule's log-rate at the held-out size
        return np.stack([at(law(r, u[rest], y, theory, sd_rest), u[held]) for r in RULES], -1)

    x_held, init_held = np.log(rates[held]), float(init_losses[held])
    point = holdout_excess(x_held, found.curves[held], init_held, at_held(found.x[rest]))
    reps = holdout_excess(x_held, found.draws[held], init_held, at_held(rest_reps))
    return point, reps


class Choice(NamedTuple):
    """The rule chosen on the held-out size, and what the choice saw."""

    rule: str  # the chosen rule
    pick: np.ndarray  # [B] the index in RULES each replicate chose
    excess: dict[str, float]  # each rule's held-out excess
    allowed: np.ndarray  # [4] the rules rule="auto" could choose
    tie: float  # excesses within this of the lowest are a tie
    bounds: tuple[float, float]  # the measured exponent's ELIGIBLE_LEVEL interval
    held: float  # the held-out size


def choose_rule(
    rule: str,
    excess: tuple[np.ndarray, np.ndarray],
    laws: Laws,
    bounds: tuple[float, float],
    theory: float,
    tie: float,
    held: float,
) -> Choice:
    """``rule``, or with ``"auto"`` the rule :func:`choose` picks from the held-out
    excesses ``(point [4], replicates [B, 4])``, in the measurement and in each replicate."""
    point, reps = excess
    slope_fit = laws.point["fit"][1]
    allowed = eligible(np.asarray(slope_fit), slope_fit, bounds, theory)
    if rule == "auto":
        chosen = RULES[int(choose(point, allowed, tie))]
        pick = choose(reps, eligible(laws.fit_reps, slope_fit, bounds, theory), tie)
    else:
        chosen = rule
        pick = np.full(laws.fit_reps.size, RULES.index(rule))
    excess_d = {r: float(e) for r, e in zip(RULES, point)}
    return Choice(chosen, pick, excess_d, allowed, tie, bounds, held)


def intervals(
    laws: Laws, pick: np.ndarray, u_target: float, level: float
) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """The ``level`` intervals of the target's rate and of the chosen exponent (each
    replicate's law is that of the rule it chose), and of the fitted exponent."""
    a_reps = np.choose(pick, [lr[0] for lr in laws.reps])
    alpha_reps = np.choose(pick, [lr[1] for lr in laws.reps])
    return (
        _pair(np.exp(percentiles(a_reps + alpha_reps * u_target, level))),
        _pair(percentiles(alpha_reps, level)),
        _pair(percentiles(laws.fit_reps, level)),
    )


def analyse(
    sizes: np.ndarray,
    rates: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
    init_losses: np.ndarray,
    target: float,
    along: str,
    rule: str,
    level: float,
    bootstrap: int,
    rng: np.random.Generator,
) -> Analysis:
    """The analysis of the module's docstring on checked inputs (sizes ascending)."""
    found = size_optima(rates, scores, bootstrap, rng)
    usable = np.flatnonzero(np.isfinite(found.x))
    at_edge = np.array([e is not None for e in found.edges]) & np.isfinite(found.x)
    per_size = PerSize(np.exp(found.x), optima_intervals(found, level), at_edge)
    notes = size_notes(sizes, found, at_edge)
    if usable.size < 2:
        return no_law(rule, usable.size, per_size, notes)
    u, u_target, theory = np.log(sizes), math.log(target), THEORY_EXPONENT[along]
    laws = fit_laws(u[usable], found.x[usable], found.reps[usable].T, theory)
    noisy = bool(found.noisy[usable].all())
    bounds = _pair(percentiles(laws.fit_reps, ELIGIBLE_LEVEL)) if noisy else (-np.inf, np.inf)
    excess = score_holdout(u, rates, found, init_losses, usable, theory)
    tie = TIE_TOLERANCE / reach(u[usable], u_target) ** 2
    choice = choose_rule(rule, excess, laws, bounds, theory, tie, float(sizes[usable[-1]]))
    interval, exponent_interval, fitted_interval = (
        intervals(laws, choice.pick, u_target, level) if noisy else (NAN2, NAN2, NAN2)
    )
    predictions = {r: math.exp(a + alpha * u_target) for r, (a, alpha) in laws.point.items()}
    rule_shares = {r: float(np.mean(choice.pick == i)) for i, r in enumerate(RULES)}
    notes += choice_notes(rule, choice, rule_shares, predictions, interval, level, target)
    return Analysis(
        rate=predictions[choice.rule],
        interval=interval,
        rule=choice.rule,
        reason=_reason(rule, choice),
        exponent=laws.point[choice.rule][1],
        exponent_interval=exponent_interval,
        fitted_exponent=laws.point["fit"][1],
        fitted_exponent_interval=fitted_interval,
        laws=laws.point,
        predictions=predictions,
        holdout_excess=choice.excess,
        rule_shares=rule_shares,
        warnings=tuple(notes),
        **per_size._asdict(),
    )


def no_law(rule: str, found: int, per_size: PerSize, notes: list[str]) -> Analysis:
    """The analysis when only ``found`` (< 2) sizes have a finite best rate: no law, NaN."""
    notes = [
        *notes,
        f"only {found} size(s) have a finite best rate: no law can be fitted and "
        "the rate is NaN (lower min_lr, or check the runs)",
    ]
    return Analysis(
        rate=math.nan,
        interval=NAN2,
        rule="none" if rule == "auto" else rule,
        reason="no rule: fewer than 2 sizes have a finite best rate",
        exponent=math.nan,
        exponent_interval=NAN2,
        fitted_exponent=math.nan,
        fitted_exponent_interval=NAN2,
        laws=dict.fromkeys(RULES, NAN2),
        predictions=dict.fromkeys(RULES, math.nan),
        holdout_excess=dict.fromkeys(RULES, math.nan),
        rule_shares=dict.fromkeys(RULES, math.nan),
        warnings=tuple(notes),
        **per_size._asdict(),
    )


def choice_notes(
    rule: str,
    choice: Choice,
    rule_shares: dict[str, float],
    predictions: dict[str, float],
    interval: tuple[float, float],
    level: float,
    target: float,
) -> list[str]:
    """The warnings about the answer: an interval wider than a decade, a choice the
    replicates mostly did not make, rules as good on the held-out size that
    disagree at the target beyond the interval."""
    notes = []
    lo, hi = interval
    if math.isfinite(lo) and hi / lo > 10:
        notes.append(
            f"the target's {level:.0%} interval spans {hi / lo:.3g}x (more than a decade): "
            "use more seeds or more rates (num_lrs)"
        )
    if rule == "auto" and rule_shares[choice.rule] < 0.5:
        others = sorted((r for r in rule_shares if r != choice.rule and rule_shares[r] > 0),
                        key=lambda r: -rule_shares[r])  # fmt: skip
        split = ", ".join(f"{r} {rule_shares[r]:.0%}" for r in others)
        notes.append(
            f"the held-out size chose {choice.rule}, but only {rule_shares[choice.rule]:.0%} "
            f"of the bootstrap replicates chose it ({split}): the rule is uncertain (the "
            "interval spans them); add seeds, or a size closer to the target"
        )
    rivals = rival_rules(choice, predictions, interval)
    if math.isfinite(lo) and rivals:
        notes.append(
            "rules that predicted the held-out size about as well disagree at the target "
            f"beyond the interval [{lo:.3g}, {hi:.3g}]: "
            + ", ".join(f"{r} {predictions[r]:.3g}" for r in rivals)
            + f"; add a size closer to the target {target:g}"
        )
    return notes


def rival_rules(
    choice: Choice, predictions: dict[str, float], interval: tuple[float, float]
) -> list[str]:
    """The allowed rules whose held-out excess is within :data:`DISAGREE_MARGIN` (once
    projected to the target) of the lowest and whose prediction lies outside
    ``interval``."""
    scored = {
        r: e for (r, e), ok in zip(choice.excess.items(), choice.allowed) if ok and math.isfinite(e)
    }
    best = min(scored.values(), default=math.nan)
    margin = DISAGREE_MARGIN * choice.tie / TIE_TOLERANCE
    # (a relative 1e-9: a rule equal to the chosen one up to rounding is not a rival)
    lo, hi = interval[0] * (1 - 1e-9), interval[1] * (1 + 1e-9)
    return [r for r, e in scored.items() if e <= best + margin and not lo <= predictions[r] <= hi]


def _reason(rule: str, choice: Choice) -> str:
    """One line: the rule, why, and every rule's held-out excess."""
    # (fixed decimals: near 0 an excess is a difference of nearly equal losses,
    # whose leading digits another CPU's rounding changes)
    listed = ", ".join(f"{r} {e:.4f}" if math.isfinite(e) else f"{r} n/a"
                       for r, e in choice.excess.items())  # fmt: skip
    tail = f"held-out size {choice.held:g}, excess {listed}"
    if rule != "auto":
        return f"{choice.rule}: chosen by rule={rule!r}; {tail}"
    ruled_out = [r for r, ok in zip(RULES, choice.allowed) if not ok]
    scored = {r: e for r, e in choice.excess.items() if r not in ruled_out and math.isfinite(e)}
    lowest = min(scored, key=lambda r: (scored[r], PREFERENCE.index(r)), default=None)
    if lowest is None:
        why = "no rule could be scored on the held-out size"
    elif lowest == choice.rule:
        why = "the lowest held-out excess"
    else:
        why = (
            f"within {choice.tie:.2g} of the lowest held-out excess ({lowest}) and first in "
            "the preference order"
        )
    if ruled_out:
        lo, hi = choice.bounds
        why += (
            f" ({' and '.join(ruled_out)} ruled out: outside the measured exponent's "
            f"{ELIGIBLE_LEVEL:.0%} interval [{lo:.3g}, {hi:.3g}])"
        )
    return f"{choice.rule}: {why}; {tail}"


def _edge_note(kind: str | None, size: float, rate: float) -> str:
    where = {
        "low": ("the lowest tested rate", "lower min_lr"),
        "high": ("the highest tested rate", "raise max_lr"),
        "below_diverged": (
            "the largest rate that did not diverge",
            "the best may lie between it and the first diverged rate: raise num_lrs",
        ),
        "above_diverged": (
            "the smallest rate that did not diverge",
            "the rates below it diverged: check the runs at small rates",
        ),
    }[kind or "low"]
    return f"size {size:g}: the best rate {rate:.3g} is at {where[0]}: {where[1]}"


# ---------------------------------------------------------------- the result


@dataclasses.dataclass(frozen=True, eq=False)
class TransferResult:
    """The best rate at a size too large to sweep, from sweeps at small sizes.

    Made by :func:`lrjax.transfer`, or from curves with :meth:`from_curves`
    and from one :class:`lrjax.SweepResult` per size with :meth:`from_sweeps`.
    How each number is computed is in the module docstring
    (``lrjax._results._transfer``); rates are in learning-rate units, exponents
    in ``log rate`` per ``log size``.

    Attributes:
      rate: the predicted best rate at ``target`` (NaN when fewer than two
        sizes have a finite best rate; ``warnings`` says why).
      interval: ``(low, high)``, its ``level`` bootstrap interval; it includes
        the uncertainty of the rule's choice (each replicate chooses again).
      rule: the rule used: ``"fit"``, ``"theory"``, ``"shrunk"`` or ``"reuse"``.
      reason: one line: why that rule, with each rule's held-out excess.
      exponent: the rule's exponent ``alpha`` in ``rate = exp(a) * size**alpha``.
      exponent_interval: its bootstrap interval (a fixed rule's exponent is
        fixed unless replicates choose other rules).
      fitted_exponent: the exponent least squares fits over every size
        (the measured trend, whichever rule is used).
      fitted_exponent_interval: its bootstrap interval.
      laws: ``{rule: (a, alpha)}`` every rule's law fitted on every usable size.
      sizes: ``[n]`` the small sizes, ascending (widths or run lengths).
      target: the size to predict.
      along: ``"width"`` or ``"steps"``.
      optima: ``[n]`` each size's best rate (NaN where every rate diverged).
      optima_intervals: ``[n, 2]`` their bootstrap intervals.
      at_edge: ``[n]`` bool: the best tested rate is the first or last finite
        one (the optimum may lie beyond; ``warnings`` says what to do).
      predictions: ``{rule: rate at target}``.
      holdout_excess: ``{rule: excess}`` each rule's prediction of the largest
        usable size from the others, scored on its measured curve.
      rule_shares: ``{rule: fraction}`` of the bootstrap replicates that chose it.
      rates: per size, ``[K]`` the rates tried, ascending.
      scores: per size, ``[seeds, K]`` each copy's score (``inf`` diverged).
      init_losses: ``[n]`` the loss before training (NaN if unknown).
      level: the intervals' coverage (0.8 by default).
      score_label: what ``scores`` measure.
      steps: training steps of every small run together.
      flops: the small runs' FLOPs together (NaN if not measured).
      target_flops: one run's FLOPs at the target (NaN if not measured).
      sweeps: the :class:`lrjax.SweepResult` of each size, or ``None``.
      warnings: one line each: what makes the answer less trustworthy and
        what to do about it.

    Example:
      >>> import numpy as np
      >>> from lrjax._results import TransferResult
      >>> sizes = [16, 32, 64, 128]
      >>> rates = np.geomspace(1e-4, 1.0, 13)
      >>> best = [0.5 * s**-0.5 for s in sizes]  # a known law
      >>> curve = lambda b: 0.3 + 0.05 * np.log(rates / b) ** 2
      >>> scores = [np.stack([curve(b), curve(b)]) for b in best]  # 2 seeds
      >>> res = TransferResult.from_curves(
      ...     sizes, rates, scores, target=1024, init_losses=[2.3] * 4, num_steps=400
      ... )
      >>> print(f"{res.rate:.6f} {res.rule} {res.exponent:.3f}")
      0.015625 fit -0.500
      >>> print(f"{res.predict(512):.6f} {res.predictions['theory']:.6f}")
      0.022097 0.005524
    """

    rate: float
    interval: tuple[float, float]
    rule: str
    reason: str
    exponent: float
    exponent_interval: tuple[float, float]
    fitted_exponent: float
    fitted_exponent_interval: tuple[float, float]
    laws: dict[str, tuple[float, float]]
    sizes: np.ndarray
    target: float
    along: str
    optima: np.ndarray
    optima_intervals: np.ndarray
    at_edge: np.ndarray
    predictions: dict[str, float]
    holdout_excess: dict[str, float]
    rule_shares: dict[str, float]
    rates: tuple[np.ndarray, ...]
    scores: tuple[np.ndarray, ...]
    init_losses: np.ndarray
    level: float
    score_label: str
    steps: int
    flops: float = math.nan
    target_flops: float = math.nan
    sweeps: tuple[Any, ...] | None = None
    warnings: tuple[str, ...] = ()

    # ------------------------------------------------------------ constructors

    @classmethod
    def from_curves(
        cls,
        sizes: Sequence[float],
        rates: Any,
        scores: Sequence[Any],
        *,
        target: float,
        along: str = "width",
        init_losses: Sequence[float] | None = None,
        num_steps: int | Sequence[int] | None = None,
        flops: float | None = None,
        target_flops: float | None = None,
        rule: str = "auto",
        level: float = 0.8,
        bootstrap: int = DEFAULT_BOOTSTRAP,
        bootstrap_seed: int = 0,
        score_label: str = "score",
    ) -> TransferResult:
        """The analysis of each size's scores against its rates.

        Warnings (:attr:`warnings`) are also emitted as ``RuntimeWarning``.

        Args:
          sizes: at least 3 distinct positive sizes, in any order (the result
            sorts them, with their curves).
          rates: ``[K]`` log-spaced rates shared by every size, or one
            ascending array per size (at least 3 rates each; ``[n, K]``).
          scores: per size, ``[seeds, K]`` each copy's score (lower is
            better; ``inf`` or NaN where it diverged), or ``[K]`` for one
            seed (``[n, seeds, K]`` when every size has the same shape).
          target: the size to predict the best rate at.
          along: ``"width"`` or ``"steps"`` (the theory's exponent and labels).
          init_losses: per size, the loss before training: the excess's
            reference (NaN or ``None``: each curve's largest finite score).
          num_steps: training steps per run, one for all sizes or one per size
            (along ``"steps"``: the sizes themselves by default).
          flops: the small runs' FLOPs together, if measured.
          target_flops: one run's FLOPs at the target, if measured.
          rule: ``"auto"`` (chosen on the held-out size) or one of
            ``"fit"``, ``"theory"``, ``"shrunk"``, ``"reuse"``.
          level: the intervals' coverage, in (0, 1).
          bootstrap: replicates, >= 100.
          bootstrap_seed: seeds the bootstrap's NumPy generator.
          score_label: what the scores measure (axis labels).
        """
        sizes_a = check_sizes(sizes)
        rates_l = _check_rate_grids(rates, sizes_a.size)
        runs = Runs(
            sizes=sizes_a,
            rates=rates_l,
            scores=_check_scores(scores, rates_l),
            init_losses=_check_init_losses(init_losses, sizes_a.size),
            steps=_check_num_steps(num_steps, sizes_a, along),
            score_label=score_label,
            sweeps=None,
        )
        options = check_options(
            target, along, rule, level, bootstrap, bootstrap_seed, flops, target_flops
        )
        return cls._build(runs, options, stacklevel=4)

    @classmethod
    def from_sweeps(
        cls,
        sweeps: Sequence[Any],
        sizes: Sequence[float],
        *,
        target: float,
        along: str = "width",
        flops: float | None = None,
        target_flops: float | None = None,
        rule: str = "auto",
        level: float = 0.8,
        bootstrap: int = DEFAULT_BOOTSTRAP,
        bootstrap_seed: int = 0,
        stacklevel: int = 2,
    ) -> TransferResult:
        """The analysis of one :class:`lrjax.SweepResult` per size, each over one
        name (the rate).

        A copy's score is its validation loss after the last step when the
        sweep has ``val_losses``, else its mean training loss over the last
        10% of steps (``inf`` where it diverged): the rule of the sweep's own
        scores, per seed. A size's loss before training is the mean of
        ``losses[:, :, 0]``. Warnings are also emitted as ``RuntimeWarning``
        (``stacklevel`` as in :func:`warnings.warn`, counted from the caller
        of this method). Other arguments as :meth:`from_curves`; along
        ``"steps"`` each size must be its sweep's ``num_steps``.
        """
        sizes_a = check_sizes(sizes)
        if not isinstance(sweeps, (list, tuple)) or len(sweeps) != sizes_a.size:
            raise ValueError(
                f"sweeps must hold one SweepResult per size ({sizes_a.size}), got {_kind(sweeps)}"
            )
        read = [_read_sweep(sw, i, float(sizes_a[i]), along) for i, sw in enumerate(sweeps)]
        rates_l, scores_l, init, steps = (list(column) for column in zip(*read))
        runs = Runs(
            sizes=sizes_a,
            rates=rates_l,
            scores=scores_l,
            init_losses=np.array(init, np.float64),
            steps=steps,
            score_label=_sweeps_label(sweeps),
            sweeps=tuple(sweeps),
        )
        options = check_options(
            target, along, rule, level, bootstrap, bootstrap_seed, flops, target_flops
        )
        return cls._build(runs, options, stacklevel=stacklevel + 2)

    @classmethod
    def _build(cls, runs: Runs, options: Options, stacklevel: int) -> TransferResult:
        """The result of the analysis of ``runs`` (sorted by size here); its warnings
        emitted at ``stacklevel`` (counted from here)."""
        runs = runs.by_size()
        out = analyse(
            runs.sizes, runs.rates, runs.scores, runs.init_losses, options.target,
            options.along, options.rule, options.level, options.bootstrap,
            np.random.default_rng(options.bootstrap_seed),
        )  # fmt: skip
        steps = sum(s.shape[0] * s.shape[1] * t for s, t in zip(runs.scores, runs.steps))
        res = cls(
            **out._asdict(),
            sizes=runs.sizes,
            target=options.target,
            along=options.along,
            rates=tuple(runs.rates),
            scores=tuple(runs.scores),
            init_losses=runs.init_losses,
            level=options.level,
            score_label=runs.score_label,
            steps=int(steps),
            flops=options.flops,
            target_flops=options.target_flops,
            sweeps=runs.sweeps,
        )
        for note in res.warnings:
            warnings.warn(note, RuntimeWarning, stacklevel=stacklevel)
        return res

    # ------------------------------------------------------------ reading

    def predict(self, size: Any) -> Any:
        """The chosen rule's best rate at ``size`` (a number or an array of sizes)."""
        a, alpha = self.laws.get(self.rule, (math.nan, math.nan))
        s = np.asarray(size, np.float64)
        if np.any(~(s > 0)):
            raise ValueError(f"size must be positive, got {size!r}")
        out = np.exp(a + alpha * np.log(s))
        return float(out) if out.ndim == 0 else out

    def mean_curves(self) -> tuple[np.ndarray, ...]:
        """Each size's mean score over seeds (``inf`` where any seed diverged)."""
        return tuple(mean_curve(s) for s in self.scores)

    @property
    def compute_ratio(self) -> float:
        """The small runs' FLOPs over one target run's (NaN when either is unknown)."""
        if not (self.target_flops > 0):
            return math.nan
        return self.flops / self.target_flops

    def __repr__(self) -> str:
        """A few lines: the rate and interval, the rule and why, the exponent, warnings."""
        lo, hi = self.interval
        pct = f"{self.level:.0%}"
        el, eh = self.exponent_interval
        cost = f"{self.steps:,} training steps in the small runs"
        if math.isfinite(self.compute_ratio):
            cost += f" ({self.compute_ratio:.3g}x one target run's FLOPs)"
        sizes = ", ".join(f"{s:g}" for s in self.sizes)
        return (
            f"TransferResult(along={self.along!r}, sizes {sizes} -> target {self.target:g}:\n"
            f"  rate={self.rate:.3g} ({pct} interval {lo:.3g} to {hi:.3g})\n"
            f"  rule={self.reason}\n"
            f"  exponent={self.exponent:.3g} ({pct} interval {el:.3g} to {eh:.3g}); "
            f"fitted {self.fitted_exponent:.3g}\n"
            f"  {cost}; {len(self.warnings)} warning(s))"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON; NaN and inf become ``None`` (each sweep as its ``to_dict()``)."""
        return {
            "rate": json_scalar(self.rate),
            "interval": to_json(self.interval),
            "rule": self.rule,
            "reason": self.reason,
            "exponent": json_scalar(self.exponent),
            "exponent_interval": to_json(self.exponent_interval),
            "fitted_exponent": json_scalar(self.fitted_exponent),
            "fitted_exponent_interval": to_json(self.fitted_exponent_interval),
            "laws": {r: to_json(v) for r, v in self.laws.items()},
            "sizes": to_json(self.sizes),
            "target": self.target,
            "along": self.along,
            "optima": to_json(self.optima),
            "optima_intervals": to_json(self.optima_intervals),
            "at_edge": [bool(e) for e in self.at_edge],
            "predictions": {r: json_scalar(v) for r, v in self.predictions.items()},
            "holdout_excess": {r: json_scalar(v) for r, v in self.holdout_excess.items()},
            "rule_shares": {r: json_scalar(v) for r, v in self.rule_shares.items()},
            "rates": [to_json(r) for r in self.rates],
            "scores": [to_json(s) for s in self.scores],
            "init_losses": to_json(self.init_losses),
            "level": self.level,
            "score_label": self.score_label,
            "steps": self.steps,
            "flops": json_scalar(self.flops),
            "target_flops": json_scalar(self.target_flops),
            "warnings": list(self.warnings),
            "sweeps": None if self.sweeps is None else [s.to_dict() for s in self.sweeps],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransferResult:
        """Rebuilds a result from :meth:`to_dict` output (without its sweeps).

        ``None`` becomes NaN, except in ``scores`` where it was a divergence (``inf``).
        """
        if not isinstance(d, dict) or "laws" not in d or "rule" not in d:
            raise ValueError("not a TransferResult dict (it needs 'rule' and 'laws')")
        nan = math.nan
        pair = lambda p: tuple(float(v) for v in from_json(p, nan))
        return cls(
            rate=float(from_json(d["rate"], nan)),
            interval=pair(d["interval"]),
            rule=d["rule"],
            reason=d["reason"],
            exponent=float(from_json(d["exponent"], nan)),
            exponent_interval=pair(d["exponent_interval"]),
            fitted_exponent=float(from_json(d["fitted_exponent"], nan)),
            fitted_exponent_interval=pair(d["fitted_exponent_interval"]),
            laws={r: pair(v) for r, v in d["laws"].items()},
            sizes=from_json(d["sizes"], nan),
            target=float(d["target"]),
            along=d["along"],
            optima=from_json(d["optima"], nan),
            optima_intervals=from_json(d["optima_intervals"], nan).reshape(-1, 2),
            at_edge=np.asarray(d["at_edge"], bool),
            predictions={r: float(from_json(v, nan)) for r, v in d["predictions"].items()},
            holdout_excess={r: float(from_json(v, nan)) for r, v in d["holdout_excess"].items()},
            rule_shares={r: float(from_json(v, nan)) for r, v in d["rule_shares"].items()},
            rates=tuple(from_json(r, nan) for r in d["rates"]),
            scores=tuple(from_json(s, math.inf) for s in d["scores"]),
            init_losses=from_json(d["init_losses"], nan),
            level=float(d["level"]),
            score_label=d["score_label"],
            steps=int(d["steps"]),
            flops=float(from_json(d["flops"], nan)),
            target_flops=float(from_json(d["target_flops"], nan)),
            sweeps=None,
            warnings=tuple(d["warnings"]),
        )

    def plot(self, ax: Any = None):
        """Two panels: each size's mean score against rate, its optimum and interval
        marked; and the law in log-log (the optima with their intervals, the
        chosen rule's line through the target, the target's rate with its
        interval, each rule's prediction at the target as its own marker).

        Args:
          ax: two matplotlib Axes ``(curves, law)`` to draw on, or ``None``
            (a new figure).

        Returns:
          The matplotlib Figure.
        """
        return _plots.transfer_plot(self, ax)


# ---------------------------------------------------------------- checked inputs


class Runs(NamedTuple):
    """Each size's measurements, checked (sizes in any order until :meth:`by_size`)."""

    sizes: np.ndarray  # [n]
    rates: list[np.ndarray]  # per size, [K] ascending
    scores: list[np.ndarray]  # per size, [seeds, K]
    init_losses: np.ndarray  # [n], NaN if unknown
    steps: list[int]  # per size, training steps per run
    score_label: str
    sweeps: tuple[Any, ...] | None

    def by_size(self) -> Runs:
        """The runs sorted by size (ties in the given order)."""
        order = np.argsort(self.sizes, kind="stable")
        pick = lambda seq: [seq[i] for i in order]
        return self._replace(
            sizes=self.sizes[order],
            rates=pick(self.rates),
            scores=pick(self.scores),
            init_losses=self.init_losses[order],
            steps=pick(self.steps),
            sweeps=None if self.sweeps is None else tuple(pick(self.sweeps)),
        )


class Options(NamedTuple):
    """The analysis's settings, checked (see :meth:`TransferResult.from_curves`)."""

    target: float
    along: str
    rule: str
    level: float
    bootstrap: int
    bootstrap_seed: Any
    flops: float
    target_flops: float


def check_options(
    target: Any,
    along: Any,
    rule: Any,
    level: Any,
    bootstrap: Any,
    bootstrap_seed: Any,
    flops: Any,
    target_flops: Any,
) -> Options:
    """The settings as :class:`Options`; a ValueError or TypeError naming a bad one."""
    check_choice("along", along, ALONG)
    if rule != "auto" and rule not in RULES:
        raise ValueError(f"rule must be 'auto' or one of {RULES}, got {rule!r}")
    check_finite("target", target)
    if not target > 0:
        raise ValueError(f"target must be a positive finite size, got {target!r}")
    check_finite("level", level)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    check_count("bootstrap", bootstrap)
    if bootstrap < 100:
        raise ValueError(f"bootstrap must be an int >= 100, got {bootstrap!r}")
    return Options(
        target=float(target),
        along=along,
        rule=rule,
        level=float(level),
        bootstrap=int(bootstrap),
        bootstrap_seed=bootstrap_seed,
        flops=_check_flops(flops, "flops"),
        target_flops=_check_flops(target_flops, "target_flops"),
    )


def _kind(x: Any) -> str:
    return f"{len(x)} item(s)" if isinstance(x, (list, tuple)) else type(x).__name__


def check_sizes(sizes: Any) -> np.ndarray:
    """``sizes`` as a float array: at least 3, positive, finite and distinct."""
    try:
        s = np.asarray(sizes, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"sizes must be a sequence of numbers, got {sizes!r}") from None
    if s.ndim != 1 or s.size < 3:
        raise ValueError(f"sizes must hold at least 3 sizes, got {sizes!r}")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError(f"sizes must be positive and finite, got {sizes!r}")
    if np.unique(s).size != s.size:
        raise ValueError(f"sizes must be distinct, got {sizes!r}")
    return s


def _check_rates(rates: Any, name: str) -> np.ndarray:
    r = np.asarray(rates, np.float64)
    if r.ndim != 1 or r.size < 3:
        raise ValueError(f"{name} must be a 1-D array of at least 3 rates, got shape {r.shape}")
    if not (np.isfinite(r).all() and (r > 0).all() and (np.diff(r) > 0).all()):
        raise ValueError(
            f"{name} must be positive, finite and ascending, got "
            + np.array2string(r, threshold=6, precision=3, max_line_width=10**6)
        )
    return r


def _check_rate_grids(rates: Any, n: int) -> list[np.ndarray]:
    """``rates``: one grid for every size, or one per size (``[n, K]``)."""
    per_size = (isinstance(rates, np.ndarray) and rates.ndim == 2) or (
        isinstance(rates, (list, tuple)) and len(rates) > 0 and np.ndim(rates[0]) == 1
    )
    if not per_size:
        return [_check_rates(rates, "rates")] * n
    if len(rates) != n:
        raise ValueError(f"rates must be one array, or one per size ({n}), got {len(rates)}")
    return [_check_rates(r, f"rates[{i}]") for i, r in enumerate(rates)]


def _check_scores(scores: Any, rates: list[np.ndarray]) -> list[np.ndarray]:
    """``scores``: one ``[seeds, K]`` (or ``[K]``) array per size, ``[n, seeds, K]`` stacked."""
    if isinstance(scores, np.ndarray) and scores.ndim == 3:
        scores = list(scores)
    if not isinstance(scores, (list, tuple)) or len(scores) != len(rates):
        raise ValueError(
            f"scores must hold one [seeds, K] array per size ({len(rates)}), got {_kind(scores)}"
        )
    out = []
    for i, (s, r) in enumerate(zip(scores, rates)):
        s = np.asarray(s, np.float64)
        s = s[None] if s.ndim == 1 else s
        if s.ndim != 2 or s.shape[1] != r.size or s.shape[0] < 1:
            raise ValueError(
                f"scores[{i}] must have shape [seeds, {r.size}] (one score per rate), "
                f"got {np.shape(scores[i])}"
            )
        out.append(s)
    return out


def _check_init_losses(init_losses: Any, n: int) -> np.ndarray:
    """``[n]`` the loss before training per size (NaN where ``None``)."""
    if init_losses is None:
        return np.full(n, np.nan)
    init = np.asarray(init_losses, np.float64)
    if init.shape != (n,):
        raise ValueError(f"init_losses must hold one loss per size ({n}), got shape {init.shape}")
    return init


def _check_num_steps(num_steps: Any, sizes: np.ndarray, along: str) -> list[int]:
    """Training steps per run, per size (along ``"steps"`` the sizes by default)."""
    n = sizes.size
    if num_steps is None:
        if along != "steps":
            raise ValueError("num_steps is needed along='width' (the steps of each run)")
        return [int(s) for s in sizes]
    if np.ndim(num_steps) == 0:
        return [check_count("num_steps", num_steps, minimum=1)] * n
    if len(num_steps) != n:
        raise ValueError(f"num_steps must be one int or one per size ({n}), got {len(num_steps)}")
    return [check_count(f"num_steps[{i}]", s, minimum=1) for i, s in enumerate(num_steps)]


def _check_flops(flops: Any, name: str) -> float:
    if flops is None:
        return math.nan
    check_finite(name, flops)
    if not flops >= 0:
        raise ValueError(f"{name} must be a number >= 0 or None, got {flops!r}")
    return float(flops)


def _read_sweep(sweep: Any, i: int, size: float, along: str) -> tuple[Any, ...]:
    """``(rates, scores, loss before training, steps)`` of ``sweeps[i]`` (one size):
    its rates ascending, each seed's score (:func:`lrjax._results.seed_scores`)."""
    names = tuple(getattr(sweep, "names", ()))
    if len(names) != 1:
        raise ValueError(f"sweeps[{i}] must be a sweep over one name (the rate), got names {names}")
    grid = np.asarray(sweep.grid[names[0]], np.float64)
    order = np.argsort(grid, kind="stable")
    rates = _check_rates(grid[order], f"sweeps[{i}].grid[{names[0]!r}]")
    scores = seed_scores(sweep.losses, sweep.stop_step, sweep.val_losses)[:, order]
    first = np.asarray(sweep.losses, np.float64)[:, :, 0]
    init = float(np.nanmean(first)) if np.isfinite(first).any() else math.nan
    if along == "steps" and int(sweep.num_steps) != size:
        raise ValueError(
            f"sizes[{i}] must be sweeps[{i}].num_steps ({sweep.num_steps}) along='steps', "
            f"got {size:g}"
        )
    return rates, scores, init, int(sweep.num_steps)


def _sweeps_label(sweeps: Sequence[Any]) -> str:
    """What the scores of ``sweeps`` measure: their common label, else the rule."""
    labels = {sw.score_label for sw in sweeps}
    if len(labels) == 1:
        return labels.pop()
    validated = {sw.val_losses is not None for sw in sweeps}
    if validated == {True}:
        return "validation loss after the last step"
    if validated == {False}:
        return "mean training loss over the last 10% of each run's steps"
    return "validation loss after the last step, else mean training loss (last 10%)"
