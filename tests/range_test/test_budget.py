"""suggest_for, best_at and interval on problems with closed-form answers.

The noisy quadratic ``f(w) = a w^2 / 2`` trained by SGD with gradient noise of
variance ``sigma^2`` has the expected loss after ``t`` steps at rate ``lr``::

    L(lr, t) = a/2 * (q^t w0^2 + lr^2 sigma^2 (1 - q^t) / (1 - q)),  q = (1 - lr a)^2

so the best constant rate at every horizon (and the stability edge ``2 / a``)
is known: it falls as the run gets longer, which is what ``suggest_for``
extrapolates.
"""

from __future__ import annotations

import numpy as np
import pytest

from lrjax import RangeTestResult

A, W0, SIGMA = 1.0, 3.0, 0.5


def expected_loss(lr, t):
    q = (1 - lr * A) ** 2
    return A / 2 * (q**t * W0**2 + lr**2 * SIGMA**2 * (1 - q**t) / (1 - q))


def result(T=100, K=32, seeds=1, noise=0.0, seed=0):
    lrs = np.geomspace(1e-3, 1.9 / A, K)
    t = np.arange(T)
    curves = expected_loss(lrs[:, None], t[None, :])
    rng = np.random.default_rng(seed)
    losses = curves[None] * (1 + noise * rng.standard_normal((seeds, K, T)))
    stop = -np.ones((seeds, K), int)
    return RangeTestResult.from_parallel(lrs, losses.astype(np.float32), losses, stop, 4.0), lrs


def excess(lr, H):
    """``(L - L*) / (L0 - L*)`` of a constant rate for ``H`` steps (fine-grid optimum)."""
    fine = np.geomspace(1e-4, 1.99 / A, 20001)
    star = expected_loss(fine, H).min()
    return (expected_loss(lr, H) - star) / (A / 2 * W0**2 - star)  # L0: rate 0


def test_best_at_is_the_argmin_of_the_window_at_each_horizon():
    r, lrs = result()
    for h in (1, 7, 10, 33, 50, 100):
        w = max(1, h // 10)
        window = np.mean(r.losses[0, :, h - w : h].astype(np.float64), axis=-1)
        assert r.best_at(h) == lrs[np.argmin(window)]
    assert r.best_at(100) == r.best_lr
    with pytest.raises(ValueError, match="steps must be in"):
        r.best_at(101)


def test_the_best_rate_falls_with_the_horizon():
    r, _ = result()
    path = [r.best_at(h) for h in (10, 30, 100)]
    assert path[0] > path[1] > path[2]


@pytest.mark.parametrize("factor", [3, 10])
def test_suggest_for_longer_runs_lands_near_the_closed_form_optimum(factor):
    r, _ = result()
    H = factor * r.num_steps
    lr = r.suggest_for(H)
    # the quality measure; the test's own best rate (100 steps) is worse
    assert excess(lr, H) <= 0.05, (lr, excess(lr, H))
    assert excess(lr, H) < excess(r.best_lr, H)
    assert lr <= r.best_lr


def test_suggest_for_within_the_test_is_best_at():
    r, _ = result()
    assert r.suggest_for(40) == r.best_at(40)
    assert r.suggest_for(r.num_steps) == r.best_lr
    assert r.suggest_for(300) == r.suggest_for(300)  # deterministic
    with pytest.raises(ValueError, match="total_steps"):
        r.suggest_for(0)
    with pytest.raises(TypeError, match="total_steps"):
        r.suggest_for(1.5)


def test_interval_matches_its_definition():
    r, lrs = result(seeds=4, noise=0.3)
    lo, hi = r.interval
    i = int(np.argmin(r.scores))
    spread = np.sqrt(r.score_std**2 + r.score_std[i] ** 2)
    close = r.scores - r.scores[i] <= spread
    inside = (lrs >= lo) & (lrs <= hi)
    assert close[inside].all() and inside[i]
    # the run is maximal: the rates just outside are distinguishable
    j, k = np.flatnonzero(inside)[[0, -1]]
    assert j == 0 or not close[j - 1]
    assert k == lrs.size - 1 or not close[k + 1]
    assert lo < hi  # noise of 30% makes neighbours indistinguishable
    assert result()[0].interval is None  # one seed: no spread to judge by


# ------------------------------------------------------- the peak of a schedule


def scheduled_loss(peaks, shape):
    """Expected loss after a run whose rate at step ``t`` is ``peak * shape[t]``
    (brute force over the steps: ``m <- q_t m + lr_t^2 sigma^2``, ``m = E[w^2]``)."""
    m = np.full(np.shape(peaks), W0**2)
    for s in shape:
        lr = peaks * s
        m = (1 - lr * A) ** 2 * m + lr**2 * SIGMA**2
    return A / 2 * m


def cosine_shape(H):
    """Cosine decay from 1 to 0 over ``H`` steps, from its closed form."""
    return np.array([0.5 * (1 + np.cos(np.pi * t / H)) for t in range(H)])


def test_schedule_peak_is_the_constant_rate_over_the_schedules_mean():
    import lrjax

    r, _ = result()
    H = 1000
    shape = cosine_shape(H)
    want = r.suggest_for(H) / shape.mean()
    assert r.suggest_for(H, schedule=lrjax.cosine(1.0, H)) == pytest.approx(want, rel=1e-5)
    # only the shape matters, not the scale
    assert r.suggest_for(H, schedule=lrjax.cosine(7.0, H)) == pytest.approx(want, rel=1e-5)
    # a flat schedule is the constant answer; within the test, best_at over the mean
    assert r.suggest_for(H, schedule=lambda t: 0.3 + 0 * t) == pytest.approx(r.suggest_for(H))
    assert r.suggest_for(40, schedule=lrjax.cosine(1.0, 40)) == pytest.approx(
        r.best_at(40) / cosine_shape(40).mean(), rel=1e-5
    )
    # a Python step function (not traceable) is evaluated step by step
    step = r.suggest_for(H, schedule=lambda t: 1.0 if t < H // 2 else 0.5)
    assert step == pytest.approx(r.suggest_for(H) / 0.75)


@pytest.mark.parametrize("factor", [3, 10])
def test_schedule_peak_lands_near_the_closed_form_optimum(factor):
    import lrjax

    r, _ = result()
    H = factor * r.num_steps
    shape = cosine_shape(H)
    fine = np.geomspace(1e-3, 1.99 / A, 4001)
    losses = scheduled_loss(fine, shape)
    star, L0 = losses.min(), A / 2 * W0**2

    def ex(peak):
        return (scheduled_loss(np.array(peak), shape) - star) / (L0 - star)

    peak = r.suggest_for(H, schedule=lrjax.cosine(1.0, H))
    assert ex(peak) <= 0.05, (peak, ex(peak))
    best_peak = fine[np.argmin(losses)]
    assert best_peak / 2 < peak < best_peak * 2
    # the constant answer used as the peak anneals too early
    assert ex(peak) < ex(r.suggest_for(H)) / 10


@pytest.mark.parametrize(
    ("schedule", "error", "match"),
    [
        (0.1, TypeError, "schedule must be a callable"),
        (lambda t: 0 * t, ValueError, "positive peak"),
        (lambda t: np.nan * t, ValueError, "finite"),
        (lambda t: 1 / 0, ValueError, "could not be evaluated .*ZeroDivisionError"),
    ],
)
def test_schedule_bad_inputs(schedule, error, match):
    r, _ = result()
    with pytest.raises(error, match=match):
        r.suggest_for(300, schedule=schedule)
