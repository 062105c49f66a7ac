"""The analysis behind ``lrjax.transfer``: NumPy only, on synthetic curves with known answers.

Curves are scores against log-rate. An exact parabola in log-rate has its
optimum at the vertex, so every optimum and law below is known in closed form;
noisy curves add seed noise of the size measured on the digits MLP (a per-seed
standard deviation of 0.015-0.03 in validation loss near the best rate, with a
per-seed offset shared by the whole curve).
"""

from __future__ import annotations

import ast
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from lrjax._results import SweepResult, TransferResult
from lrjax._results import _transfer as T  # noqa: N812

ROOT = Path(__file__).resolve().parents[1]
#: The default grid of ``lrjax.transfer`` (DESIGN.md section 10): 16 rates in [1e-6, 10].
RATES = np.geomspace(1e-6, 10.0, 16)
X = np.log(RATES)
INIT = 2.3
#: Exact-curve tolerance in log-rate: the optimum is a 3x3 solve on integer-spaced
#: points (sums of at most 7 terms of size <= 3^4) and a division; float64
#: rounding stays near 1e-13 of the curve's scale.
EXACT = 1e-9


def parabola(best: float, curvature: float = 0.05, rates: np.ndarray = RATES) -> np.ndarray:
    """A score curve with its minimum 0.3 at rate ``best``."""
    return 0.3 + curvature * np.log(rates / best) ** 2


def exact_scores(best_rates, seeds: int = 2, **kwargs) -> list[np.ndarray]:
    """Identical seeds: the noise estimate is exactly 0, so every interval is a point."""
    return [np.tile(parabola(b, **kwargs), (seeds, 1)) for b in best_rates]


def power_law(sizes, exponent: float, at_first: float = 0.05) -> np.ndarray:
    sizes = np.asarray(sizes, np.float64)
    return at_first * (sizes / sizes[0]) ** exponent


def build(sizes, scores, target, rates=RATES, **kwargs) -> TransferResult:
    kwargs.setdefault("init_losses", [INIT] * len(sizes))
    kwargs.setdefault("num_steps", 100)
    kwargs.setdefault("bootstrap", 400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return TransferResult.from_curves(sizes, rates, scores, target=target, **kwargs)


# ---------------------------------------------------------------- exact recovery

WIDTHS = [16, 32, 64, 128]
STEPS = [100, 200, 400, 800]


@pytest.mark.parametrize("exponent", [-1.0, -0.7, -0.5, -0.25, 0.0])
@pytest.mark.parametrize("along", ["width", "steps"])
def test_optima_and_law_recovered_exactly(exponent, along):
    sizes = WIDTHS if along == "width" else STEPS
    target = 1024 if along == "width" else 6400
    # off-grid optima: each lies between grid points
    best = power_law(sizes, exponent, at_first=0.037)
    res = build(sizes, exact_scores(best), target, along=along, rule="fit")
    np.testing.assert_allclose(np.log(res.optima), np.log(best), rtol=0, atol=EXACT)
    np.testing.assert_allclose(np.log(res.optima_intervals), np.log(best)[:, None] * [1, 1],
                               rtol=0, atol=EXACT)  # fmt: skip
    assert not res.at_edge.any()
    assert res.fitted_exponent == pytest.approx(exponent, abs=EXACT)
    truth = 0.037 * (target / sizes[0]) ** exponent
    assert math.log(res.rate) == pytest.approx(math.log(truth), abs=EXACT)
    assert math.log(res.predict(3 * sizes[-1])) == pytest.approx(
        math.log(0.037 * (3 * sizes[-1] / sizes[0]) ** exponent), abs=EXACT
    )
    assert res.warnings == ()


def test_optima_exact_on_each_size_s_own_grid_and_window():
    """Rates that differ per size, a dense grid (a wider fit window), and optima near
    the grid's ends (the window is cut there): the vertex is still exact."""
    sizes = [10, 20, 40]
    grids = [np.geomspace(1e-3, 1, 25), np.geomspace(3e-4, 0.3, 16), np.geomspace(1e-4, 1, 9)]
    best = [0.0013, 0.25, 0.0021]
    assert [T.window_points(np.log(g)) for g in grids] == [4, 2, 1]
    scores = [np.tile(parabola(b, 0.3, rates=g), (3, 1)) for b, g in zip(best, grids)]
    res = build(sizes, scores, 80, rates=grids)
    np.testing.assert_allclose(np.log(res.optima), np.log(best), rtol=0, atol=EXACT)


def test_sizes_are_sorted_with_their_curves():
    best = power_law(WIDTHS, -0.5)
    scores = exact_scores(best)
    res = build([64, 16, 128, 32], [scores[2], scores[0], scores[3], scores[1]], 1024)
    np.testing.assert_array_equal(res.sizes, WIDTHS)
    np.testing.assert_allclose(res.optima, best, rtol=1e-9)
    # stacked arrays: [n, K] rates and [n, seeds, K] scores
    stacked = build(WIDTHS, np.stack(scores), 1024, rates=np.tile(RATES, (4, 1)))
    np.testing.assert_allclose(stacked.optima, best, rtol=1e-9)


def test_vertex_falls_back_to_the_argmin():
    """A concave fit (a wide window) or a vertex beyond the window: the best grid point."""
    x = np.log(np.geomspace(1e-3, 1, 25))  # 0.125 decade apart: 4 points each side
    spike = np.ones(25)
    spike[8:17] = [0.2, 0.9, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.2]
    v = T.vertex(x, spike)
    assert v.coef[2] < 0 and not v.fitted and v.x == x[12]
    x13 = np.log(np.geomspace(1e-3, 1, 13))  # 0.25 decade apart: 2 points each side
    at_edge = np.linspace(0.5, 3.0, 13)
    at_edge[:3] = [0.5, 0.7, 1.0]  # a convex parabola with its vertex below x[0]
    v = T.vertex(x13, at_edge)
    assert v.coef[2] > 0 and not v.fitted and v.x == x13[0]
    assert T.edge_kind(at_edge) == "low"
    assert np.isnan(T.vertex(x13, np.full(13, np.inf)).x)


# ---------------------------------------------------------------- the rules by hand

SHRINK_SD = 0.2


def test_each_rule_s_prediction_by_hand():
    """Optima that follow no power law; every rule against its formula."""
    sizes = np.array([8.0, 16, 32, 64])
    best = np.array([0.2, 0.09, 0.07, 0.021])
    target = 512.0
    res = build(sizes, exact_scores(best), target, rule="fit")
    u, y, ut = np.log(sizes), np.log(best), math.log(target)
    slope, intercept = np.polyfit(u, y, 1)
    hand = {
        "fit": math.exp(intercept + slope * ut),
        "theory": math.exp(y[-1] - (ut - u[-1])),
        "reuse": best[-1],
        # exact optima: the fit's bootstrap spread is 0, so the prior has no weight
        "shrunk": math.exp(y[-1] + slope * (ut - u[-1])),
    }
    for rule, rate in hand.items():
        assert math.log(res.predictions[rule]) == pytest.approx(math.log(rate), abs=EXACT), rule
    assert res.rate == res.predictions["fit"]
    assert res.laws["theory"][1] == -1.0 and res.laws["reuse"][1] == 0.0


def test_shrunk_exponent_by_hand():
    """The precision-weighted combination of the prior N(-1, 0.5^2) and the fit."""
    u = np.log([8.0, 16, 32])
    y = np.array([-1.0, -1.2, -1.5])
    slope = np.polyfit(u, y, 1)[0]
    a, alpha = T.law("shrunk", u, y, -1.0, SHRINK_SD)
    prior_prec, fit_prec = 1 / T.SHRINK_PRIOR_SD**2, 1 / SHRINK_SD**2
    hand = (slope * fit_prec + -1.0 * prior_prec) / (fit_prec + prior_prec)
    assert alpha == pytest.approx(hand, abs=1e-12)
    assert a + alpha * u[-1] == pytest.approx(y[-1], abs=1e-12)  # through the largest size
    # with a single size the fitted rules are undefined, the fixed ones are not
    assert np.isnan(T.law("fit", u[:1], y[:1], -1.0)[1])
    assert T.law("theory", u[:1], y[:1], -1.0)[0] == pytest.approx(y[0] + u[0])


def test_choose_by_excess_with_ties_to_the_preference_order():
    rules = list(T.RULES)  # fit, theory, shrunk, reuse
    excess = np.array([0.012, 0.016, 0.0105, 0.5])
    allowed = np.ones(4, bool)
    assert rules[T.choose(excess, allowed, tie=0.01)] == "theory"  # all but reuse tie
    assert rules[T.choose(excess, allowed, tie=0.003)] == "fit"  # fit ties shrunk
    assert rules[T.choose(excess, allowed, tie=0.0)] == "shrunk"  # the lowest
    not_theory = np.array([True, False, True, True])
    assert rules[T.choose(excess, not_theory, tie=0.01)] == "fit"
    nan = np.array([np.nan, 0.3, np.nan, 0.2])
    assert rules[T.choose(nan, allowed, tie=0.0)] == "reuse"


def test_holdout_excess_by_hand():
    """Inside the fit window: the parabola's excess; outside it: linear interpolation;
    beyond the finite rates: 1 plus the distance in decades."""
    c, best = 0.05, 0.01
    curve = parabola(best, c)
    v = T.vertex(X, curve)
    step = T.grid_step(X)
    d = 0.4 * step  # within the window (one grid point each side)
    got = T.holdout_excess(X, curve, INIT, np.log(best) + np.array([d, -d]))
    np.testing.assert_allclose(got, c * d**2 / (INIT - 0.3), rtol=1e-9)
    far = np.log(1e-4)
    assert far < v.lo
    lin = np.interp(far, X, curve)
    assert T.holdout_excess(X, curve, INIT, np.array([far]))[0] == pytest.approx(
        (lin - 0.3) / (INIT - 0.3), rel=1e-9
    )
    assert T.holdout_excess(X, curve, INIT, np.array([np.log(1e-8)]))[0] == pytest.approx(3.0)
    diverged = curve.copy()
    diverged[12:] = np.inf  # rates from RATES[12] up diverged
    between = (X[11] + X[12]) / 2
    assert T.holdout_excess(X, diverged, INIT, np.array([between]))[0] == pytest.approx(
        1 + (between - X[11]) / math.log(10)
    )
    # init_loss unknown: the curve's largest finite value is the reference
    top = curve.max()
    assert T.holdout_excess(X, curve, math.nan, np.array([far]))[0] == pytest.approx(
        (lin - 0.3) / (top - 0.3), rel=1e-9
    )


# ---------------------------------------------------------------- the holdout chooses


def noisy_scores(best, seeds, sigma, rng, curvature=0.05):
    return [parabola(b, curvature) + sigma * rng.standard_normal((seeds, RATES.size)) for b in best]


@pytest.mark.parametrize(("exponent", "rule"), [(-0.5, "fit"), (-1.0, "theory"), (0.0, "reuse")])
def test_holdout_chooses_the_rule_the_law_follows(exponent, rule):
    """Sharp curves and little noise: the fitted exponent is -0.5 +- 0.005, so
    the fixed rules are ruled out for -0.5, and for -1 and 0 every rule that
    follows the trend ties on the held-out size (a fixed exponent is preferred)."""
    rng = np.random.default_rng(0)
    best = power_law(WIDTHS, exponent)
    res = build(WIDTHS, noisy_scores(best, 3, 0.002, rng, curvature=0.5), 1024, bootstrap=1000)
    assert res.rule == rule, res.reason
    assert res.reason.startswith(f"{rule}: ")
    assert res.rule_shares[rule] > 0.95  # not a coin flip: the replicates agree
    assert res.exponent_interval[0] - 0.05 < exponent < res.exponent_interval[1] + 0.05
    lo, hi = res.interval
    assert lo <= 0.05 * (1024 / 16) ** exponent <= hi


def test_fit_chosen_on_its_held_out_excess_when_the_others_are_plausible():
    """Noisy enough that the measured exponent allows -1, but the held-out curve is
    sharp: the fit's held-out excess is the lowest by far."""
    rng = np.random.default_rng(3)
    sizes = [16, 32, 64, 128]
    best = power_law(sizes, -0.55)
    scores = noisy_scores(best[:3], 2, 0.15, rng, curvature=0.05)
    scores.append(np.tile(parabola(best[3], curvature=2.0), (2, 1)))
    res = build(sizes, scores, 256, rule="auto")
    assert res.fitted_exponent_interval[0] < -1.0 or "ruled out" not in res.reason
    e = res.holdout_excess
    assert res.rule == min(e, key=e.get) or e[res.rule] <= min(e.values()) + T.TIE_TOLERANCE


# ---------------------------------------------------------------- coverage

#: Trials per coverage test. A method whose true coverage is 0.8 measures within
#: 3 binomial standard deviations, sqrt(0.8 * 0.2 / TRIALS) each, of 0.8 in all
#: but 0.13% of seeds: that is the margin allowed below 0.8.
TRIALS = 3000


def margin(trials: int) -> float:
    return 3 * math.sqrt(0.8 * 0.2 / trials)


def synthetic_curves(rng, trials, seeds, best_x, curvature=0.05, sigma=0.02, offset=0.05):
    d = X - best_x[..., None]
    truth = 0.3 + curvature * d**2
    noise = sigma * rng.standard_normal((*best_x.shape, seeds, X.size))
    shift = offset * rng.standard_normal((*best_x.shape, seeds, 1))
    return truth[..., None, :] + noise + shift


@pytest.mark.parametrize("seeds", [2, 5])
def test_optimum_interval_covers_the_truth(seeds):
    """The per-size 80% interval, on many noisy curves at once (the same functions
    the result uses, vectorised over trials)."""
    rng = np.random.default_rng(seeds)
    hits, widths = [], []
    for _ in range(TRIALS // 500):
        best_x = rng.uniform(X[3], X[12], 500)
        scores = synthetic_curves(rng, 500, seeds, best_x)
        curve = T.mean_curve(scores)
        v = T.vertex(X, curve)
        var, df = T.noise(X, scores, v)
        reps, _ = T.replicate_optima(X, curve, var, df, 400, rng)
        lo, hi = np.moveaxis(T.percentiles(reps, 0.8), -1, 0)
        hits.append((lo <= best_x) & (best_x <= hi))
        widths.append(hi - lo)
    coverage = np.mean(hits)
    assert 0.8 - margin(TRIALS) <= coverage <= 0.9, coverage
    # and it is an interval, not the whole grid: about a tenth of a decade
    assert np.median(widths) / math.log(10) < 0.3


TARGET_TRIALS = 1000


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [2, 5])
def test_target_interval_covers_the_truth(seeds):
    """The target's 80% interval through the whole analysis: every replicate
    recomputes the optima, chooses the rule on the held-out size, refits and
    predicts. Sizes follow a known power law (exponent -0.5, 4 sizes to 8x
    the largest)."""
    rng = np.random.default_rng(10 + seeds)
    sizes = np.array(WIDTHS, np.float64)
    hits = []
    for _ in range(TARGET_TRIALS):
        first = rng.uniform(math.log(1e-3), math.log(1e-1))
        best_x = first - 0.5 * np.log(sizes / sizes[0])
        scores = list(synthetic_curves(rng, 1, seeds, best_x))
        out = T.analyse(sizes, [RATES] * 4, scores, np.full(4, INIT), 1024.0, "width",
                        "auto", 0.8, 200, rng)  # fmt: skip
        truth = first - 0.5 * math.log(1024 / 16)
        hits.append(math.log(out.interval[0]) <= truth <= math.log(out.interval[1]))
    coverage = np.mean(hits)
    assert 0.8 - margin(TARGET_TRIALS) <= coverage <= 0.97, coverage


# ---------------------------------------------------------------- warnings


def emitted(make):
    """``(result, messages)``: every RuntimeWarning ``make()`` emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = make()
    return res, [str(w.message) for w in caught if w.category is RuntimeWarning]


def test_warns_at_the_edge_of_the_rates():
    best = power_law(WIDTHS, -0.5)
    best[0] = 3e-7  # below the lowest rate
    best[3] = 30.0  # above the highest
    res, messages = emitted(
        lambda: TransferResult.from_curves(
            WIDTHS, RATES, exact_scores(best), target=1024, num_steps=10, bootstrap=200
        )
    )
    assert messages == list(res.warnings)
    assert res.at_edge.tolist() == [True, False, False, True]
    assert messages[0] == "size 16: the best rate 1e-06 is at the lowest tested rate: lower min_lr"
    assert messages[1] == "size 128: the best rate 10 is at the highest tested rate: raise max_lr"
    np.testing.assert_allclose(res.optima[[0, 3]], RATES[[0, -1]], rtol=1e-12)


def test_warns_next_to_diverged_rates():
    best = power_law(WIDTHS, -0.5)
    scores = exact_scores(best)
    k = int(np.searchsorted(RATES, best[1]))
    scores[1][:, k:] = np.inf  # diverged from just above the best
    res = build(WIDTHS, scores, 1024)
    assert res.at_edge.tolist() == [False, True, False, False]
    assert any(w.startswith("size 32: ") and "raise num_lrs" in w for w in res.warnings)


def test_warns_when_the_interval_is_wider_than_a_decade():
    rng = np.random.default_rng(1)
    best = power_law([16, 32, 64], -0.5)
    res = build([16, 32, 64], noisy_scores(best, 2, 0.3, rng, curvature=0.02), 1e5)
    lo, hi = res.interval
    assert hi / lo > 10
    assert any("more than a decade" in w and "more seeds" in w for w in res.warnings)


def test_warns_when_rules_as_good_on_the_holdout_disagree_at_the_target():
    """Forcing reuse on a trend of exactly -1: the fit, theory and shrunk rules
    predicted the held-out size perfectly, and predict 1/8 of reuse's rate."""
    best = power_law(WIDTHS, -1.0)
    res = build(WIDTHS, exact_scores(best), 1024, rule="reuse")
    assert res.reason.startswith("reuse: chosen by rule='reuse'")
    (note,) = [w for w in res.warnings if "disagree" in w]
    assert "fit 0.000781, theory 0.000781, shrunk 0.000781;" in note
    assert note.endswith("add a size closer to the target 1024")
    assert not any("disagree" in w for w in build(WIDTHS, exact_scores(best), 1024).warnings)


def test_warns_when_the_replicates_mostly_choose_another_rule():
    """Noisy curves and three sizes: the held-out size's choice is often a coin
    flip. The warning appears exactly when fewer than half the replicates chose its
    rule, and gives the others' shares."""
    seen = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        res = build([16, 32, 64], noisy_scores(power_law([16, 32, 64], -0.6), 2, 0.05, rng),
                    1024, bootstrap=200)  # fmt: skip
        (note,) = [w for w in res.warnings if "of the bootstrap replicates chose it" in w] or [""]
        warned = bool(note)
        assert warned == (res.rule_shares[res.rule] < 0.5), (seed, res.rule_shares)
        if warned:
            share = f"only {res.rule_shares[res.rule]:.0%} of"
            assert share in note and all(
                f"{r} {s:.0%}" in note
                for r, s in res.rule_shares.items()
                if s > 0 and r != res.rule
            ), note
        seen += warned
    assert seen >= 1


def test_a_size_where_every_rate_diverged_is_left_out():
    best = power_law(WIDTHS, -0.5)
    scores = exact_scores(best)
    scores[2][:] = np.inf
    res = build(WIDTHS, scores, 1024, rule="fit")
    assert np.isnan(res.optima[2]) and not res.at_edge[2]
    assert any(w.startswith("size 64: every rate diverged; it is left out") for w in res.warnings)
    assert math.log(res.rate) == pytest.approx(math.log(0.05 * 64**-0.5), abs=EXACT)


def test_fewer_than_two_usable_sizes_give_nan_and_say_why():
    scores = exact_scores(power_law([16, 32, 64], -0.5))
    scores[0][:] = np.inf
    scores[2][:] = np.nan
    res, messages = emitted(
        lambda: TransferResult.from_curves(
            [16, 32, 64], RATES, scores, target=256, num_steps=10, bootstrap=100
        )
    )
    assert messages == list(res.warnings)
    assert messages[-1].startswith("only 1 size(s) have a finite best rate")
    assert "the rate is NaN" in messages[-1]
    assert math.isnan(res.rate) and res.rule == "none"
    assert math.isnan(res.predict(256))
    json.dumps(res.to_dict())
    law = res.plot().axes[1]  # draws what there is: one optimum, no law, no target
    assert {ln.get_marker() for ln in law.get_lines()} == {"o", "_"}  # "_": error bar caps


def test_one_seed_without_spare_points_has_no_interval():
    scores = [s[:1] for s in exact_scores(power_law(WIDTHS, -0.5))]
    res = build(WIDTHS, scores, 1024)
    assert np.isnan(res.optima_intervals).all() and all(np.isnan(res.interval))
    assert math.isfinite(res.rate)
    assert sum("no interval (use seeds >= 2)" in w for w in res.warnings) == 4


# ---------------------------------------------------------------- from sweeps


def make_sweep(seed_scores: np.ndarray, rates: np.ndarray, num_steps: int, *, val: bool,
               diverged=(), rng=None) -> SweepResult:  # fmt: skip
    """A SweepResult whose per-seed scores are ``seed_scores [S, K]``."""
    S, K = seed_scores.shape
    rng = np.random.default_rng(0) if rng is None else rng
    losses = np.tile(np.linspace(2.5, 1.0, num_steps), (S, K, 1)) + rng.normal(size=(S, K, 1))
    stop = np.full((S, K), -1)
    val_losses = None
    if val:
        val_losses = seed_scores.copy()
    else:  # the last 10% of steps average to the score
        w = max(1, num_steps // 10)
        tail = rng.normal(size=(S, K, w))
        losses[..., num_steps - w :] = seed_scores[..., None] + tail - tail.mean(-1, keepdims=True)
    for s, k in diverged:
        stop[s, k] = num_steps // 2
        losses[s, k, num_steps // 2 + 1 :] = np.nan
    scores = np.where((stop >= 0).any(0), np.inf, seed_scores.mean(0))
    return SweepResult(
        names=("lr",), grid={"lr": rates}, shape=(K,), losses=losses.astype(np.float32),
        smoothed=losses.astype(np.float32), scores=scores, score_std=np.zeros(K),
        diverged=(stop >= 0).any(0), status=np.full(K, "good"), stop_step=stop,
        num_steps=num_steps, val_losses=val_losses,
    )  # fmt: skip


@pytest.mark.parametrize("val", [False, True])
def test_from_sweeps_scores_each_seed_by_the_sweeps_rule(val):
    """Each seed's score is ``lrjax._results.seed_scores`` (the one rule; a sweep's own
    scores, ``copy_scores``, are its mean over seeds), checked against a loop: the
    evaluation loss, else the mean of the last ``max(1, T // 10)`` losses; ``inf``
    where that seed diverged."""
    from lrjax._results import copy_scores, seed_scores

    rng = np.random.default_rng(0)
    for T_steps in (1, 9, 10, 57):
        sweeps, refs = [], []
        for _ in range(3):
            losses = rng.normal(size=(3, 16, T_steps))
            stop = np.full((3, 16), -1)
            stop[1, 2] = 0
            evals = rng.normal(size=(3, 16)) if val else None
            window = max(1, T_steps // 10)
            ref = np.empty((3, 16))
            for s in range(3):
                for k in range(16):
                    tail = losses[s, k, T_steps - window :]
                    ref[s, k] = evals[s, k] if val else sum(tail) / len(tail)
                    ref[s, k] = np.inf if stop[s, k] >= 0 else ref[s, k]
            np.testing.assert_allclose(seed_scores(losses, stop, evals), ref, rtol=1e-12)
            mean = np.mean(ref, 0)
            np.testing.assert_allclose(copy_scores(losses, stop, evals)[0], mean, rtol=1e-12)
            order = rng.permutation(16)  # a grid in any order
            sw = make_sweep(np.ones((3, 16)), RATES[order], T_steps, val=val)
            sweeps.append(SweepResult(**{**sw.__dict__, "losses": losses, "stop_step": stop,
                                         "val_losses": evals}))  # fmt: skip
            refs.append(ref[:, np.argsort(order)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = TransferResult.from_sweeps(sweeps, [16, 32, 64], target=256, bootstrap=100)
        for mine, ref in zip(res.scores, refs):
            np.testing.assert_allclose(mine, ref, rtol=1e-12)


@pytest.mark.parametrize("val", [False, True])
def test_from_sweeps_equals_from_curves(val):
    rng = np.random.default_rng(0)
    best = power_law(WIDTHS, -0.5)
    per_size = noisy_scores(best, 2, 0.02, rng)
    sweeps = []
    for i, s in enumerate(per_size):
        order = rng.permutation(RATES.size)  # a grid in any order
        at = int(np.flatnonzero(order == 15)[0])  # seed 1 diverged at the largest rate
        sweeps.append(make_sweep(s[:, order], RATES[order], 50 + 10 * i, val=val,
                                 diverged=[(1, at)]))  # fmt: skip
        per_size[i] = s.copy()
        per_size[i][1, 15] = np.inf
    res = TransferResult.from_sweeps(sweeps[::-1], WIDTHS[::-1], target=1024, bootstrap=300)
    init = [float(np.nanmean(sw.losses[:, :, 0])) for sw in sweeps]
    ref = build(WIDTHS, per_size, 1024, init_losses=init, num_steps=[50, 60, 70, 80],
                bootstrap=300)  # fmt: skip
    np.testing.assert_allclose(res.optima, ref.optima, rtol=1e-6)
    assert res.rate == pytest.approx(ref.rate, rel=1e-6) and res.rule == ref.rule
    np.testing.assert_allclose(res.init_losses, init, rtol=1e-6)
    assert res.sweeps == tuple(sweeps)
    assert res.steps == sum(16 * 2 * t for t in (50, 60, 70, 80))
    # the sweeps' labels name their own windows (5 to 8 steps): the result's says the rule
    assert res.score_label == (
        "validation loss after the last step"
        if val
        else "mean training loss over the last 10% of each run's steps"
    )


def test_from_sweeps_along_steps_checks_the_lengths():
    rng = np.random.default_rng(0)
    best = power_law(STEPS, -1.0)
    sweeps = [make_sweep(s, RATES, n, val=True) for s, n in
              zip(noisy_scores(best, 2, 0.01, rng), STEPS)]  # fmt: skip
    res = TransferResult.from_sweeps(sweeps, STEPS, target=3200, along="steps", bootstrap=200,
                                     flops=8.0e9, target_flops=4.0e9)  # fmt: skip
    assert res.steps == 2 * 16 * sum(STEPS)
    assert res.compute_ratio == 2.0
    with pytest.raises(ValueError, match=r"^sizes\[1\] must be sweeps\[1\]\.num_steps"):
        TransferResult.from_sweeps(sweeps, [100, 250, 400, 800], target=3200, along="steps")


# ---------------------------------------------------------------- reading the result


def noisy_result(**kwargs) -> TransferResult:
    rng = np.random.default_rng(2)
    best = power_law(WIDTHS, -0.6)
    scores = noisy_scores(best, 3, 0.02, rng)
    scores[1][0, 14:] = np.inf
    return build(WIDTHS, scores, 1024, flops=3e9, target_flops=1e10, **kwargs)


def test_to_dict_round_trips_through_json():
    res = noisy_result(init_losses=[INIT, math.nan, INIT, INIT])
    d = res.to_dict()
    back = json.loads(json.dumps(d, allow_nan=False))
    again = TransferResult.from_dict(back)
    assert again.to_dict() == d
    assert again.rate == res.rate and again.interval == res.interval
    assert np.isinf(again.scores[1][0, 15]) and np.isnan(again.init_losses[1])
    assert again.predict(2048) == pytest.approx(res.predict(2048))
    with pytest.raises(ValueError, match="not a TransferResult dict"):
        TransferResult.from_dict({"rate": 1.0})


def test_repr_is_a_few_lines():
    res = noisy_result()
    text = repr(res)
    lines = text.splitlines()
    assert 3 <= len(lines) <= 6
    assert lines[0] == "TransferResult(along='width', sizes 16, 32, 64, 128 -> target 1024:"
    lo, hi = res.interval
    assert f"rate={res.rate:.3g} (80% interval {lo:.3g} to {hi:.3g})" in text
    assert f"rule={res.reason}" in text
    assert f"exponent={res.exponent:.3g}" in text
    assert f"({res.compute_ratio:.3g}x one target run's FLOPs)" in text
    assert text.endswith(f"{len(res.warnings)} warning(s))")


def test_predict_takes_numbers_and_arrays():
    res = noisy_result()
    a, alpha = res.laws[res.rule]
    sizes = np.array([10.0, 1e4])
    np.testing.assert_allclose(res.predict(sizes), np.exp(a + alpha * np.log(sizes)))
    assert isinstance(res.predict(100), float)
    assert res.predict(res.target) == pytest.approx(res.rate)
    with pytest.raises(ValueError, match=r"^size must be positive"):
        res.predict([10, 0])


def test_plot_draws_the_curves_the_optima_and_the_law():
    from lrjax.plotting import agg_figure

    res = noisy_result()
    fig = agg_figure((11, 4))
    curves, law = fig.subplots(1, 2)
    assert res.plot((curves, law)) is fig
    means = res.mean_curves()
    lines = [ln for ln in curves.get_lines() if ln.get_label().startswith("width ")]
    assert [ln.get_label() for ln in lines] == [f"width {s:g}" for s in WIDTHS]
    for ln, mean in zip(lines, means):
        ok = np.isfinite(mean)
        np.testing.assert_allclose(ln.get_xdata(), RATES[ok])
        np.testing.assert_allclose(ln.get_ydata(), mean[ok])
    marks = [ln for ln in curves.get_lines() if ln.get_marker() in ("D", "X")]
    np.testing.assert_allclose(sorted(m.get_xdata()[0] for m in marks), np.sort(res.optima))
    assert curves.get_xscale() == "log"
    # the law: its line is predict(), the star the target's rate, a marker per rule
    assert law.get_xscale() == "log" and law.get_yscale() == "log"
    (line,) = [ln for ln in law.get_lines() if ln.get_label().startswith(f"{res.rule}: rate ~")]
    np.testing.assert_allclose(line.get_ydata(), res.predict(line.get_xdata()))
    assert line.get_xdata()[-1] == pytest.approx(res.target)
    (star,) = [ln for ln in law.get_lines() if ln.get_marker() == "*"]
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (res.target, res.rate)
    for rule, rate in res.predictions.items():
        (m,) = [ln for ln in law.get_lines() if ln.get_label() == f"{rule}: {rate:.3g}"]
        assert m.get_marker() == T_MARKERS[rule] and m.get_ydata()[0] == rate
    # the optima's error bars span their intervals
    bars = [c for c in law.collections if len(c.get_segments()) == len(WIDTHS)]
    spans = sorted(tuple(np.exp(np.log(s[:, 1]))) for s in bars[0].get_segments())
    np.testing.assert_allclose(spans, sorted(tuple(i) for i in res.optima_intervals), rtol=1e-9)


def test_plot_makes_its_own_figure_and_rejects_one_axes():
    from lrjax.plotting import agg_figure

    res = noisy_result()
    fig = res.plot()
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match=r"^ax must be two matplotlib Axes"):
        res.plot(agg_figure().add_subplot())


T_MARKERS = {"fit": "s", "theory": "^", "shrunk": "v", "reuse": "D"}


# ---------------------------------------------------------------- bad input


def curves3():
    return exact_scores(power_law([16, 32, 64], -0.5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sizes": [16, 32]}, r"^sizes must hold at least 3 sizes"),
        ({"sizes": [16, 32, 32]}, r"^sizes must be distinct"),
        ({"sizes": [16, 0, 64]}, r"^sizes must be positive and finite"),
        ({"sizes": [16, -32, 64]}, r"^sizes must be positive and finite"),
        ({"rates": RATES[:-1]}, r"^scores\[0\] must have shape \[seeds, 15\]"),
        ({"rates": RATES[::-1]}, r"^rates must be positive, finite and ascending"),
        ({"rates": RATES[:2]}, r"^rates must be a 1-D array of at least 3 rates"),
        ({"scores": curves3()[:2]}, r"^scores must hold one \[seeds, K\] array per size"),
        ({"rates": np.tile(RATES, (2, 1))}, r"^rates must be one array, or one per size \(3\)"),
        ({"init_losses": [1.0, 2.0]}, r"^init_losses must hold one loss per size"),
        ({"level": 1.0}, r"^level must be in \(0, 1\)"),
        ({"level": 0}, r"^level must be in \(0, 1\)"),
        ({"along": "depth"}, r"^along must be one of"),
        ({"rule": "best"}, r"^rule must be 'auto' or one of"),
        ({"target": 0}, r"^target must be a positive finite size"),
        ({"bootstrap": 10}, r"^bootstrap must be an int >= 100"),
        ({"num_steps": None}, r"^num_steps is needed along='width'"),
        ({"num_steps": [10, 20]}, r"^num_steps must be one int or one per size"),
        ({"flops": -1.0}, r"^flops must be a number >= 0"),
    ],
)
def test_bad_input_names_the_argument(kwargs, message):
    args = {"sizes": [16, 32, 64], "rates": RATES, "scores": curves3(), "target": 256,
            "num_steps": 10}  # fmt: skip
    args.update(kwargs)
    sizes, rates, scores = args.pop("sizes"), args.pop("rates"), args.pop("scores")
    with pytest.raises(ValueError, match=message) as err:
        TransferResult.from_curves(sizes, rates, scores, **args)
    assert "\n" not in str(err.value)


def test_bad_sweeps_name_the_argument():
    sw = make_sweep(np.ones((2, 16)), RATES, 10, val=True)
    with pytest.raises(ValueError, match=r"^sweeps must hold one SweepResult per size \(3\)"):
        TransferResult.from_sweeps([sw, sw], [16, 32, 64], target=256)
    two = SweepResult(**{**sw.__dict__, "names": ("lr", "momentum")})
    with pytest.raises(ValueError, match=r"^sweeps\[1\] must be a sweep over one name"):
        TransferResult.from_sweeps([sw, two, sw], [16, 32, 64], target=256)


# ---------------------------------------------------------------- layering


def test_the_module_is_numpy_only():
    """No JAX and no engine: ``_results`` is becoming NumPy-only."""
    for rel in ("lrjax/_results/_transfer.py",):
        tree = ast.parse((ROOT / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "jax" or n.startswith(("jax.", "lrjax._engine")) for n in names)
