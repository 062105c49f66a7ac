"""Suggestions vs an independent, loop-by-loop rendering of fastai's rules.

The reference functions below follow fastai's ``fastai/callback/schedule.py``
(``valley``, ``slide``, ``minimum``, ``steep``) statement by statement, with
plain Python loops and lists, including its quirks (the valley's start index
when nothing decreases, negative indices, first-index tie-breaking). The
implementation under test is vectorised NumPy written separately.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from lrjax import RangeTestResult, _results

# ------------------------------------------------------------ fastai reference


def ref_nearest_loss(lrs, losses, lr):
    best_i, best_d = 0, None
    for i in range(len(lrs)):
        d = abs(lrs[i] - lr)
        if best_d is None or d < best_d:
            best_i, best_d = i, d
    return losses[best_i]


def ref_argmin(values):
    best_i = 0
    for i in range(1, len(values)):
        if values[i] < values[best_i]:
            best_i = i
    return best_i


def ref_minimum(lrs, losses):
    lr_min = lrs[ref_argmin(losses)]
    return lr_min / 10, (lr_min, ref_nearest_loss(lrs, losses, lr_min))


def ref_steep(lrs, losses):
    grads = [
        (losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i]))
        for i in range(len(lrs) - 1)
    ]
    lr_steep = lrs[ref_argmin(grads)]
    return lr_steep, (lr_steep, ref_nearest_loss(lrs, losses, lr_steep))


def ref_valley(lrs, losses):
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return lrs[idx], (lrs[idx], losses[idx])


def ref_gradient(y):
    """numpy.gradient with unit spacing, written out (2nd order inside, 1st at the ends)."""
    n = len(y)
    g = [0.0] * n
    g[0] = y[1] - y[0]
    g[-1] = y[-1] - y[-2]
    for i in range(1, n - 1):
        g[i] = (y[i + 1] - y[i - 1]) / 2
    return g


def ref_slide(lrs, losses, lr_diff=15, thresh=0.005, adjust_value=1.0):
    loss_grad = ref_gradient(losses)
    r_idx = -1
    l_idx = r_idx - lr_diff
    local_min_lr = lrs[l_idx]
    while (l_idx >= -len(losses)) and (abs(loss_grad[r_idx] - loss_grad[l_idx]) > thresh):
        local_min_lr = lrs[l_idx]
        r_idx -= 1
        l_idx -= 1
    suggestion = float(local_min_lr) * adjust_value
    # np.interp on log10(lrs): linear interpolation, written out
    x = math.log10(suggestion)
    xs = [math.log10(v) for v in lrs]
    if x <= xs[0]:
        point = losses[0]
    elif x >= xs[-1]:
        point = losses[-1]
    else:
        k = 0
        while xs[k + 1] < x:
            k += 1
        t = (x - xs[k]) / (xs[k + 1] - xs[k])
        point = losses[k] + t * (losses[k + 1] - losses[k])
    return suggestion, (suggestion, point)


REFERENCE = {"minimum": ref_minimum, "steep": ref_steep, "valley": ref_valley, "slide": ref_slide}

# -------------------------------------------------------------- random curves


def random_curve(rng: np.random.Generator, min_len: int = 2):
    """An LR-finder-like curve (plateau, descent, blow-up) or a rougher variant."""
    n = int(rng.integers(min_len, 130))
    lo, hi = 10 ** rng.uniform(-8, -4), 10 ** rng.uniform(-1, 1.5)
    lrs = np.geomspace(lo, hi, n)
    x = np.linspace(0, 1, n)
    kind = rng.integers(0, 5)
    if kind == 0:  # classic: plateau, descent, blow-up, noise
        c, d = rng.uniform(0.2, 0.8), rng.uniform(0.03, 0.15)
        y = 2.3 - 2.0 / (1 + np.exp(-(x - c) / d)) + np.exp(rng.uniform(2, 8) * (x - 1))
        y = y + rng.normal(0, rng.uniform(0, 0.05), n)
    elif kind == 1:  # random walk
        y = 2 + np.cumsum(rng.normal(0, 0.1, n))
    elif kind == 2:  # coarse values: many ties
        y = np.round(2.3 - 2 * x + rng.normal(0, 0.2, n), 1)
    elif kind == 3:  # monotone decreasing or increasing
        y = 2.3 - 2 * x if rng.random() < 0.5 else 0.3 + 2 * x
    else:  # tiny slopes around the slide threshold
        y = 1 + np.cumsum(rng.normal(0, 0.004, n))
    return lrs, y.astype(np.float64)


@pytest.mark.parametrize("method", ["minimum", "steep", "valley", "slide"])
def test_suggestions_match_fastai_reference_on_random_curves(method):
    rng = np.random.default_rng({"minimum": 1, "steep": 2, "valley": 3, "slide": 4}[method])
    ours = getattr(_results, method)
    checked = 0
    for _ in range(150):
        lrs, losses = random_curve(rng, min_len=16 if method == "slide" else 2)
        got = ours(lrs, losses)
        want = REFERENCE[method](list(lrs), list(losses))
        assert got[0] == pytest.approx(want[0], rel=1e-12), (method, lrs.size)
        assert got[1][0] == pytest.approx(want[1][0], rel=1e-12)
        assert got[1][1] == pytest.approx(want[1][1], rel=1e-9, abs=1e-12)
        checked += 1
    assert checked >= 100


@pytest.mark.parametrize(
    "losses",
    [
        [3.0, 2.0, 1.0],  # decreasing from the start: the valley starts at -1
        [1.0, 1.0, 1.0, 1.0],  # nothing decreases: fastai's initial (0, 0)
        [1.0, 2.0, 3.0, 4.0, 5.0],  # increasing
        [2.0, 1.0],  # two points: fastai's index is -1, the last rate
        [5.0, 1.0, 4.0, 3.0, 2.0, 1.5, 1.2, 0.9, 3.0],
    ],
)
def test_valley_edge_cases(losses):
    lrs = np.geomspace(1e-4, 1.0, len(losses))
    assert _results.valley(lrs, np.array(losses)) == ref_valley(list(lrs), losses)


@pytest.mark.parametrize("lr_diff,thresh,adjust", [(5, 0.05, 1.0), (3, 0.0, 0.5), (20, 0.01, 2)])
def test_slide_options(lr_diff, thresh, adjust):
    rng = np.random.default_rng(7)
    for _ in range(20):
        lrs, losses = random_curve(rng, min_len=lr_diff + 1)
        got = _results.slide(lrs, losses, lr_diff, thresh, adjust)
        want = ref_slide(list(lrs), list(losses), lr_diff, thresh, adjust)
        assert got[0] == pytest.approx(want[0], rel=1e-12)
        assert got[1][1] == pytest.approx(want[1][1], rel=1e-9, abs=1e-12)


def test_too_short_curves_raise():
    with pytest.raises(ValueError, match=r"slide.*16"):
        _results.slide(np.geomspace(1e-3, 1, 10), np.ones(10))
    with pytest.raises(ValueError, match="steep"):
        _results.steep(np.array([0.1]), np.array([1.0]))
    with pytest.raises(ValueError, match="method"):
        _results.suggest("best", np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="lr_diff"):
        _results.slide(np.geomspace(1e-3, 1, 20), np.ones(20), lr_diff=0)


def _parallel_result(scores_per_rate, diverged):
    K = len(scores_per_rate)
    lrs = np.geomspace(1e-5, 1.0, K)
    losses = np.repeat(np.asarray(scores_per_rate, np.float32)[None, :, None], 10, axis=2)
    stop = np.where(diverged, 3, -1)[None]
    losses[0, np.asarray(diverged), 4:] = np.nan
    return RangeTestResult.from_parallel(lrs, losses, losses, stop, 4.0), lrs


def test_parallel_suggestions_use_scores_before_first_divergence():
    rng = np.random.default_rng(0)
    for _ in range(20):
        K = int(rng.integers(18, 40))
        _, y = random_curve(np.random.default_rng(int(rng.integers(1 << 30))), 2)
        y = np.interp(np.linspace(0, 1, K), np.linspace(0, 1, y.size), y)
        first_bad = int(rng.integers(17, K + 1))
        diverged = np.arange(K) >= first_bad
        result, lrs = _parallel_result(np.abs(y) + 0.1, diverged)
        scores = np.asarray(result.scores[:first_bad], np.float64)
        assert np.isfinite(scores).all()
        for method, ref in REFERENCE.items():
            want = ref(list(lrs[:first_bad]), list(scores))[0]
            assert result.suggest(method) == pytest.approx(want, rel=1e-12)


def test_parallel_all_diverged_raises_and_best_is_none():
    result, _ = _parallel_result([1.0, 2.0, 3.0], [True, True, True])
    with pytest.raises(ValueError, match="every rate diverged"):
        result.suggest("valley")
    assert result.best_lr is None
    assert result.suggestions() == dict.fromkeys(RangeTestResult.methods)


# ------------------------------------------------- near_best and the defaults


def _near_best_brute(lrs, losses, tol):
    """Every candidate checked one by one: the smallest rate i <= argmin such
    that all of i..argmin are within tol of the range above the minimum."""
    b = int(np.argmin(losses))
    allowed = tol * (losses.max() - losses[b])  # the rise allowed above the best
    for i in range(b + 1):
        if all(losses[j] - losses[b] <= allowed for j in range(i, b + 1)):
            return lrs[i]
    raise AssertionError("unreachable: b itself qualifies")


@pytest.mark.parametrize("seed", range(20))
def test_near_best_equals_a_brute_force_search(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    lrs = np.sort(rng.uniform(1e-4, 1.0, n))
    losses = rng.normal(size=n).cumsum()
    for tol in (0.0, 0.05, 0.1, 0.5, 1.0):
        got, _ = _results.near_best(lrs, losses, tol)
        assert got == _near_best_brute(lrs, losses, tol)
    with pytest.raises(ValueError, match="tol"):
        _results.near_best(lrs, losses, tol=2.0)


def test_default_suggestion_with_and_without_validation():
    lrs = np.logspace(-4, 0, 5)
    curve = np.array([2.2, 1.5, 0.45, 0.4, 2.3])
    losses = np.repeat(curve[None, :, None], 3, axis=2)
    stop = -np.ones((1, 5), int)
    plain = RangeTestResult.from_parallel(lrs, losses, losses, stop, 4.0)
    assert plain.default_method == "near_best"
    # 0.45 is within 10% of the range (2.3 - 0.4) above 0.4; 1.5 is not
    assert plain.suggest() == plain.suggest("near_best") == lrs[2]
    assert plain.suggest("best") == plain.best_lr == lrs[3]
    val = dataclasses.replace(plain, val_losses=losses[:, :, -1], scores=curve)
    assert val.default_method == "budget"
    # the best validation rate for a run 3x the test's length: best_lr / 3
    assert val.suggest() == pytest.approx(lrs[3] / 3)
    assert val.suggest() == val.suggest_for(3 * val.num_steps)
    assert val.suggestions()["budget"] == val.suggest()
    # "budget" scales a validation score: without one it says so, not a training-loss rate
    with pytest.raises(ValueError, match="val_batches"):
        plain.suggest("budget")
    assert plain.suggestions()["budget"] is None
    with pytest.raises(TypeError, match="options"):
        plain.suggest("near_best", lr_diff=3)
