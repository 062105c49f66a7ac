"""The candidate rules of ``benchmarks/suggestion_quality.py`` against closed forms.

The README reports these rules (some win, most lose), so each must compute what
the README says it does. The curves are built so the answer is known: a
validation loss quadratic in log-rate around a known best rate.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import suggestion_quality as sq  # noqa: E402

from lrjax import RangeTestResult  # noqa: E402

T, EVERY = 100, 10


def result_with_curves(best_at):
    """A parallel result whose validation loss at step ``t`` is
    ``(log lr - log best_at(t))**2 + 1``: the best rate at every evaluation is
    ``best_at(t)``, exactly the vertex of a parabola through any three points."""
    lrs = np.geomspace(1e-4, 10.0, 41)
    t = EVERY * np.arange(1, T // EVERY + 1)
    curves = (np.log(lrs)[:, None] - np.log(best_at(t))[None, :]) ** 2 + 1.0  # [K, n]
    final = curves[:, -1]
    losses = np.repeat(final[None, :, None], T, axis=2)  # training curves: unused here
    k = lrs.size
    return RangeTestResult.from_dict(
        {
            "mode": "parallel",
            "lrs": lrs.tolist(),
            "losses": losses.tolist(),
            "smoothed": losses.tolist(),
            "scores": final.tolist(),
            "score_std": [0.0] * k,
            "diverged": [False] * k,
            "status": ["good"] * k,
            "stop_step": [[-1] * k],
            "num_steps": T,
            "diverge_factor": 4.0,
            "val_losses": [final.tolist()],
            "val_curves": [curves.tolist()],
            "eval_every": EVERY,
        }
    )


@pytest.mark.parametrize("slope", [0.0, -0.5, -1.0])
@pytest.mark.parametrize("budget", [300, 1000])
def test_horizon_fit_extrapolates_the_trend_of_the_best_rate(slope, budget):
    r = result_with_curves(lambda t: 0.05 * (t / T) ** slope)
    # the grid's best at T, moved along the fitted slope (exact: log r* is linear in log t)
    expected = r.suggest("best") * (budget / T) ** slope
    assert math.isclose(sq.horizon_fit(r, budget), expected, rel_tol=1e-6)


def test_horizon_fit_clips_the_slope():
    steep = result_with_curves(lambda t: 0.5 * (t / T) ** -3.0)
    assert math.isclose(
        sq.horizon_fit(steep, 1000), steep.suggest("best") * 10.0**-1.5, rel_tol=1e-6
    )
    rising = result_with_curves(lambda t: 0.01 * (t / T) ** 0.7)
    assert math.isclose(sq.horizon_fit(rising, 1000), rising.suggest("best"), rel_tol=1e-6)


def test_horizon_fit_uses_only_the_second_half():
    # the best rate jumps early and is flat over the second half: slope 0
    r = result_with_curves(lambda t: np.where(t < T / 2, 1.0, 0.02))
    assert math.isclose(sq.horizon_fit(r, 1000), r.suggest("best"), rel_tol=1e-6)


def test_parabola_vertex_and_within_rules_on_a_known_curve():
    r = result_with_curves(lambda t: 0.0317 + 0 * t)
    # the vertex of a parabola in log-rate is exact on a quadratic curve
    assert math.isclose(sq.parabola(r), 0.0317, rel_tol=1e-6)
    lrs, s = r.curve()
    # brute force: the smallest rate of the contiguous run around the best within 5%
    b = int(np.argmin(s))
    ok = s - s[b] <= 0.05 * (s.max() - s[b])
    lo = b
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    assert sq.within(0.05, "smallest")(r) == pytest.approx(float(lrs[lo]))
    assert lrs[lo] < 0.0317 < sq.within(0.05, "largest")(r)
