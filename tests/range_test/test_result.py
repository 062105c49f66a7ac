"""RangeTestResult: JSON round trip, best_lr, plots."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import optax
import pytest

import lrjax
from lrjax import RangeTestResult

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def results():
    import jax

    from lrjax.data import init_mlp

    x = jax.random.normal(jax.random.PRNGKey(0), (20, 16, 4))
    batches = (x, (x.sum(-1) > 0).astype(np.int32))

    def loss_fn(p, b):
        logits = b[0] @ p[0]["w"] + p[0]["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, b[1]).mean()

    init = lambda k: init_mlp(k, (4, 2))
    par = lrjax.range_test(
        loss_fn, None, batches, optax.sgd, 1e-3, 1e3, num_lrs=20, num_steps=20, seeds=2,
        init_fn=init,
    )  # fmt: skip
    ramp = lrjax.lr_find(
        loss_fn, init(jax.random.PRNGKey(0)), batches, optax.sgd, min_lr=1e-3, max_lr=1e3,
        num_steps=20,
    )  # fmt: skip
    return par, ramp


def test_json_round_trip(results):
    for r in results:
        d = r.to_dict()
        text = json.dumps(d, allow_nan=False)  # strict JSON: no NaN/inf tokens
        back = RangeTestResult.from_dict(json.loads(text))
        for field in ("lrs", "losses", "smoothed", "scores", "diverged", "status", "stop_step"):
            np.testing.assert_array_equal(getattr(back, field), getattr(r, field), err_msg=field)
        assert back.mode == r.mode and back.num_steps == r.num_steps
        assert back.best_lr == r.best_lr
        assert d["suggestions"] == r.suggestions()
    with pytest.raises(ValueError, match="mode"):
        RangeTestResult.from_dict({"mode": "other"})


def test_ramp_is_saved_as_ramp_and_old_files_saying_sweep_still_load(results):
    """The ramp's ``"mode"`` is ``"ramp"``; a file saved when it was ``"sweep"``
    loads as the same :class:`lrjax.RampResult`, through either class."""
    _, ramp = results
    d = ramp.to_dict()
    assert ramp.mode == d["mode"] == "ramp"
    old = json.loads(json.dumps({**d, "mode": "sweep"}))
    for back in (RangeTestResult.from_dict(old), lrjax.RampResult.from_dict(old)):
        assert isinstance(back, lrjax.RampResult) and back.mode == "ramp"
        for field in ("lrs", "losses", "smoothed", "diverged", "status"):
            np.testing.assert_array_equal(getattr(back, field), getattr(ramp, field), err_msg=field)
        assert back.stop_step == ramp.stop_step and back.best_lr == ramp.best_lr
    par = results[0].to_dict()
    with pytest.raises(ValueError, match="not a RampResult dict"):
        lrjax.RampResult.from_dict(par)


def test_parallel_fields_and_best_lr(results):
    par, _ = results
    K = 20
    assert par.losses.shape == (2, K, 20) and par.scores.shape == (K,)
    assert par.diverged.any() and not par.diverged.all()
    finite = np.isfinite(par.scores)
    assert par.best_lr == par.lrs[finite][np.argmin(par.scores[finite])]
    assert set(par.status) <= {"good", "slow", "unstable", "diverged"}
    assert (par.status[par.diverged] == "diverged").all()
    assert "RangeTestResult(20 rates" in repr(par)


def test_plot_shades_the_interval_of_rates_as_good_as_the_best():
    end = np.array([[1.0, 0.50, 0.45, 0.47, 0.9], [1.0, 0.56, 0.47, 0.45, 0.9]])
    losses = np.repeat(end[:, :, None], 2, axis=2)  # [seeds, K, T]
    lrs = np.logspace(-3, 1, 5)
    r = RangeTestResult.from_parallel(lrs, losses, losses, -np.ones((2, 5), int), 4.0)
    assert r.interval == pytest.approx((0.1, 1.0))
    ax = r.plot().axes[0]
    spans = [p for p in ax.patches if p.get_label() == "as good as best (seeds)"]
    assert len(spans) == 1
    x0, x1 = spans[0].get_x(), spans[0].get_x() + spans[0].get_width()
    assert (x0, x1) == pytest.approx((0.1 / 1.05, 1.0 * 1.05))
    # one seed: no spread to judge by, no span
    one = RangeTestResult.from_parallel(lrs, losses[:1], losses[:1], -np.ones((1, 5), int), 4.0)
    labels = [p.get_label() for p in one.plot().axes[0].patches]
    assert "as good as best (seeds)" not in labels
    import matplotlib.pyplot as plt

    plt.close("all")


def test_plots(results):
    par, ramp = results
    for r in (par, ramp):
        fig = r.plot()
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        first = f"suggested ({r.default_method})"
        assert any(lab.startswith(first) for lab in labels)
        if r.mode == "parallel":  # fastai's rules only on request
            assert not any(lab.startswith("valley") for lab in labels)
            on_request = r.plot(suggestions=("best", "valley")).axes[0]
            labels = [t.get_text() for t in on_request.get_legend().get_texts()]
            assert any(lab.startswith("suggested (best)") for lab in labels)
            assert any(lab.startswith("valley") for lab in labels)
        assert "diverged" in labels  # shaded region
        assert ax.get_xscale() == "log"
        fig2 = r.plot_curves()
        n_lines = len(fig2.axes[0].get_lines())
        assert n_lines == (20 if r.mode == "parallel" else 2)
    fig = par.plot(suggestions=["minimum"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(lab.startswith("suggested (minimum)") for lab in labels)
    assert not any(lab.startswith("valley") for lab in labels)
    assert "±1 std over seeds" in labels  # two seeds: a spread band
    import matplotlib.pyplot as plt

    plt.close("all")
