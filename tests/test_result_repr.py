"""Results print as a short summary, and their plots say what they show.

``repr`` of every result is a few facts (the grid, the best, the statuses),
never the arrays it holds: those are attributes. The range test's axes name
the learning rate, the log scale and the score.
"""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax

MAX_REPR = 400
X = np.random.default_rng(0).normal(size=(20, 8, 3)).astype(np.float32)
BATCHES = (X, X @ np.array([1.0, -2.0, 0.5], np.float32))


def mse(p, b):
    return jnp.mean((b[0] @ p - b[1]) ** 2)


def bracket_depth(text: str) -> int:
    """The deepest nesting of (), [] and {} in ``text``."""
    depth = deepest = 0
    for c in text:
        depth += (c in "([{") - (c in ")]}")
        deepest = max(deepest, depth)
    return deepest


def assert_short(text: str) -> None:
    assert len(text) < MAX_REPR, text
    assert "array(" not in text and "\n" not in text, text
    # the result's own parentheses and one level inside: "Result(..., x=1.2 (what x is))"
    assert bracket_depth(text) <= 2, text


def test_range_test_repr_is_a_summary():
    r = lrjax.range_test(mse, jnp.zeros(3), BATCHES, optax.sgd, min_lr=1e-3, max_lr=10.0,
                         num_lrs=5, num_steps=10, progress=False)  # fmt: skip
    text = repr(r)
    assert_short(text)
    assert text.startswith("RangeTestResult(5 rates in [0.001, 10]")
    assert f"best_lr={r.best_lr:.3g}" in text
    assert "'diverged': " in text and "strategy=" in text


def test_sweep_repr_is_a_summary():
    def make(lr, momentum):
        return optax.sgd(lr, momentum=momentum)

    grid = {"lr": [0.01, 0.03, 0.1], "momentum": [0.0, 0.9]}
    s = lrjax.sweep(mse, jnp.zeros(3), BATCHES, make, grid, num_steps=10, progress=False)
    text = repr(s)
    assert_short(text)
    assert text.startswith("SweepResult(6 settings: lr (3) x momentum (2), 10 steps, 1 seed(s)")
    best = s.best
    assert f"'lr': {best['lr']:.3g}" in text and f"'momentum': {best['momentum']:.3g}" in text
    assert f"best score={s.scores[s.best_index]:.4g} ({s.score_label})" in text
    assert "status={" in text


def test_lr_find_repr_is_a_summary():
    ramp = lrjax.lr_find(mse, jnp.zeros(3), BATCHES, optax.sgd, num_steps=20, progress=False)
    text = repr(ramp)
    assert_short(text)
    assert re.match(r"RampResult\(20 steps in \[1e-07, 10\], stop_step=-?\d+, valley=", text)


@pytest.mark.parametrize("method", ["pbt", "halving"])
def test_tune_repr_is_a_summary_on_a_plain_stateless_model(method):
    """A plain parameter array and no model state (nothing to reseed) tunes, and prints short."""
    t = lrjax.tune(mse, jnp.zeros(3), BATCHES, lambda lr: optax.sgd(lr),
                   {"lr": ("log", 1e-3, 1.0)}, population=4, num_steps=20, rounds=2,
                   method=method, progress=False, rate_test_steps=3)  # fmt: skip
    text = repr(t)
    assert_short(text)
    assert text.startswith(f"TuneResult(method={method!r}, 4 members x 2 rounds, 20 steps each")
    assert f"best={{'lr': {t.best['lr']:.3g}}}" in text
    assert f"best_score={t.best_score:.4g} ({t.score_label})" in text
    # the rate test: what it narrowed lr to, what it and the whole call cost
    low, high = t.rate_range
    assert f"lr narrowed to [{low:.3g}, {high:.3g}] by a rate test of 4 rates x 3 steps" in text
    assert f", {t.steps} steps in all," in text
    assert t.rate_test_steps == 3 and t.rate_test_total_steps == 12  # per copy, as passed
    assert 1e-3 <= low < high <= 1.0
    off = lrjax.tune(mse, jnp.zeros(3), BATCHES, lambda lr: optax.sgd(lr),
                     {"lr": ("log", 1e-3, 1.0)}, population=4, num_steps=20, rounds=2,
                     method=method, progress=False, rate=False)  # fmt: skip
    assert "narrowed" not in repr(off) and off.steps == t.steps - 12
    assert off.rate_test_steps == off.rate_test_total_steps == 0


def test_range_test_plot_labels_explain_themselves():
    pytest.importorskip("matplotlib")
    r = lrjax.range_test(mse, jnp.zeros(3), BATCHES, optax.sgd, min_lr=1e-3, max_lr=10.0,
                         num_lrs=5, num_steps=10, progress=False)  # fmt: skip
    ax = r.plot().axes[0]
    xlabel, ylabel = ax.get_xlabel(), ax.get_ylabel()
    assert "learning rate" in xlabel and "log scale" in xlabel, xlabel
    assert ylabel == r.score_label and "loss" in ylabel, ylabel
    labels = ax.get_legend_handles_labels()[1]
    assert any("training loss" in label for label in labels), labels
    curves = r.plot_curves().axes
    assert curves[0].get_xlabel() == "step" and "training loss" in curves[0].get_ylabel()
    assert "learning rate" in curves[1].get_ylabel()  # the colour bar


def test_sweep_plot_says_which_axis_is_log():
    pytest.importorskip("matplotlib")
    grid = {"lr": [0.001, 0.01, 0.1]}
    s = lrjax.sweep(mse, jnp.zeros(3), BATCHES, lambda lr: optax.sgd(lr), grid,
                    num_steps=10, progress=False)  # fmt: skip
    ax = s.plot().axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "lr (log scale)"
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == s.score_label
