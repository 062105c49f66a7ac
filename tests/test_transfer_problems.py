"""The rate-transfer problems of ``benchmarks/transfer_problems.py`` and their cache.

The suite must be what issue 29 asks for (declared sizes, both axes, the three
model forms, Adam and SGD, the schedules, two held-out problems); the analysis
helpers must compute what they say (checked on curves whose answer is known);
the evaluation that scores the small runs on the test split must agree with a
plain loop; and the committed cache must hold every problem as declared.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("equinox")
pytest.importorskip("flax")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import transfer_problems as tp  # noqa: E402

PROBLEMS = tp.PROBLEMS


def test_the_suite_holds_what_the_issue_asks_for():
    main = [p for p in PROBLEMS if not p.held_out]
    held = [p for p in PROBLEMS if p.held_out]
    assert len(PROBLEMS) >= 8 and len(held) == 2 and len(main) >= 6
    assert {p.framework for p in PROBLEMS} == {"pytree", "nnx", "equinox"}
    assert {p.along for p in held} == {"width", "steps"}
    steps = [p for p in main if p.along == "steps"]
    assert len(steps) >= 2
    schedules = " ".join(p.schedule_name for p in steps)
    for name in ("cosine", "one-cycle", "warmup"):
        assert name in schedules
    optimizers = " ".join(p.optimizer_name for p in main)
    assert "Adam" in optimizers and "SGD" in optimizers
    width_models = " ".join(p.model_name for p in main if p.along == "width")
    for kind in ("MLP", "CNN", "transformer"):
        assert kind in width_models
    assert len({p.name for p in PROBLEMS}) == len(PROBLEMS)


@pytest.mark.parametrize("p", PROBLEMS, ids=lambda p: p.name)
def test_each_problem_declares_sizes_a_target_and_ranges(p):
    assert p.along in ("width", "steps")
    assert len(p.sizes) >= 4 and list(p.sizes) == sorted(set(p.sizes))
    assert p.target >= 4 * p.sizes[-1]
    assert (p.num_steps is not None) == (p.along == "width")
    assert p.target_num >= 20
    assert p.small_range[0] < p.small_range[1] and p.target_range[0] < p.target_range[1]
    assert len(p.small_lrs()) == tp.SMALL_RATES == 31


def test_best_rate_is_the_vertex_of_a_parabola_in_log_rate():
    lrs = np.geomspace(1e-4, 1.0, 31)
    for best in (3.3e-3, 0.02, 0.1):
        curve = (np.log(lrs) - math.log(best)) ** 2 * 0.1 + 0.5
        assert tp.best_rate(lrs, curve, l0=10.0) == pytest.approx(best, rel=1e-9)


def test_best_rate_leaves_out_failed_runs_and_falls_back_to_the_grid():
    lrs = np.geomspace(1e-3, 1.0, 16)
    # falls up to a cliff: the best trained rate is the grid's, not a parabola's vertex
    curve = np.where(lrs < 0.1, 1.0 - 0.3 * np.log10(lrs / 1e-3), 5.0)
    i = int(np.argmin(curve))
    assert tp.best_rate(lrs, curve, l0=5.0) == pytest.approx(lrs[i])


def test_excess_interpolates_in_log_rate_and_fails_above_the_grid():
    lrs = np.array([1e-3, 1e-2, 1e-1])
    curve = np.array([2.0, 1.0, 3.0])
    l0 = 4.0
    assert tp.excess(1e-2, lrs, curve, l0) == 0.0
    assert tp.excess(1e-1, lrs, curve, l0) == pytest.approx(2.0 / 3.0)
    # halfway in log-rate between 1e-2 and 1e-1: the loss is 2.0
    assert tp.excess(math.sqrt(1e-3), lrs, curve, l0) == pytest.approx(1.0 / 3.0)
    assert tp.excess(0.2, lrs, curve, l0) == 1.0
    assert tp.excess(1e-4, lrs, curve, l0) == pytest.approx(1.0 / 3.0)  # the first point


def test_mean_curve_counts_a_failed_run_as_not_training():
    losses = np.array([[1.0, np.nan, 5.0], [2.0, 1.0, 1.0]])
    l0 = np.array([3.0, 4.0])
    np.testing.assert_allclose(tp.mean_curve(losses, l0), [1.5, 2.0, 2.0])


def test_naive_rules_fit_a_power_law_exactly():
    sizes = np.array([100, 200, 400, 800])
    optima = 0.3 * (sizes / 100.0) ** -0.7
    r = tp.naive_rules(sizes, optima, 3200)
    assert r["exponent"] == pytest.approx(-0.7)
    assert r["power"] == pytest.approx(0.3 * 32**-0.7)
    assert r["reuse"] == optima[-1] and r["scaled"] == pytest.approx(optima[-1] / 4)


def eval_mode(model):
    """The model as a user evaluates it: NNX ``.eval()``, Equinox ``inference_mode``."""
    import equinox as eqx
    from flax import nnx

    if isinstance(model, nnx.Module):
        model = nnx.clone(model)
        model.eval()
        return model
    if isinstance(model, eqx.Module):
        return eqx.nn.inference_mode(model)
    return model


@pytest.mark.parametrize(
    "name", ["noisy_mlp_momentum_steps", "digits_mlp_adam_steps", "friedman_nnx_nesterov_wsd"]
)
def test_small_runs_score_the_test_split_as_lrjax_does(name):
    """One problem per model form: the test losses ``train_grid`` computes from the
    returned parameters (it checks its validation losses against lrjax's itself) equal
    lrjax's own evaluation of the same copies on the test split, and the loss at
    initialization is the mean over the test batches of the model in eval mode."""
    import jax

    p = tp.BY_NAME[name]
    split = p.split()
    lrs = np.array([1e-3, 1e-2], np.float32)
    size = p.sizes[0]
    run = tp.train_grid(p, size, lrs, 0, target=False)
    assert np.all(np.isfinite(run.test)) and np.all(np.isfinite(run.scores))
    res = tp.lrjax.sweep(
        p.loss_fn,
        p.build(size, jax.random.PRNGKey(0)),
        split.train,
        p.make_optimizer(size),
        {"learning_rate": lrs},
        num_steps=p.steps_at(size),
        key=jax.random.PRNGKey(tp.DROPOUT_KEY),
        val_batches=split.test,
        progress=False,
    )
    # two compiled programs of the same 100 steps (one also returns the parameters):
    # XLA may fuse them differently, so float32 rounding, grown over the steps
    np.testing.assert_allclose(run.test, res.val_losses[0], rtol=1e-4)
    model = p.build(size, jax.random.PRNGKey(0))
    n = jax.tree.leaves(split.test)[0].shape[0]
    batches = [jax.tree.map(lambda a, i=i: a[i], split.test) for i in range(n)]
    l0 = np.mean([float(p.loss_fn(eval_mode(model), b)) for b in batches])
    assert tp.initial_loss(p, model, split.test) == pytest.approx(l0, rel=1e-5)


CACHED = sorted(p.stem for p in Path(tp.CACHE_DIR).glob("*.npz"))


def test_every_problem_is_cached():
    assert sorted(tp.BY_NAME) == CACHED


@pytest.mark.parametrize("name", CACHED)
def test_the_cache_holds_each_problem_as_declared(name):
    c = tp.load_curves(name)
    p = tp.BY_NAME[name]
    S = len(p.sizes)
    assert (c.along, c.held_out, c.framework) == (p.along, p.held_out, p.framework)
    assert c.sizes.tolist() == list(p.sizes) and c.target == p.target
    np.testing.assert_array_equal(c.small_lrs, p.small_lrs())
    np.testing.assert_array_equal(c.target_lrs, p.target_lrs())
    for field in ("small_val", "small_test", "small_train", "small_stop_step"):
        assert getattr(c, field).shape == (S, tp.SMALL_SEEDS, tp.SMALL_RATES)
    for field in ("small_train0", "small_val0", "small_test0", "small_wall_s"):
        assert getattr(c, field).shape == (S, tp.SMALL_SEEDS)
    assert c.target_test.shape == (tp.TARGET_SEEDS, p.target_num)
    assert c.target_test0.shape == c.target_wall_s.shape == (tp.TARGET_SEEDS,)
    # a run is NaN exactly where it diverged; every run that did not trained
    stopped = c.small_stop_step >= 0
    assert np.array_equal(np.isnan(c.small_test), stopped)
    assert np.array_equal(np.isnan(c.small_val), stopped)
    assert np.array_equal(np.isnan(c.target_test), c.target_stop_step >= 0)
    assert np.all(np.isfinite(c.small_test0)) and np.all(np.isfinite(c.target_test0))
    assert np.all(c.small_flops > 0)
    if p.along == "width":
        assert c.target_flops > c.small_flops.max()
    else:  # one model at every length
        assert np.all(c.small_flops == c.target_flops)
    assert c.small_test.dtype == np.float32
