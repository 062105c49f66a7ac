"""Hyperparameter-search problems for ``lrjax.tune``: where 4x more random search pays.

Problems for judging a search method (``lrjax.tune``'s PBT and halving, or any
other), each a ``tune_quality.Setup``: training batches ``[steps, ...]``, a
validation split stacked into 4 batches (what a method ranks by), one test
batch (what is reported), ``make(**values) -> optax.GradientTransformation``
and a search space in ``lrjax.tune``'s format. Every space names the peak rate
of its schedule ``lr``, on a log scale over 6 to 9 decades that ends where
training diverges: the range a user who does not know the rate would give.

They were chosen to *separate* search methods: on each of the six search
problems, random search with 21 settings (what ``lrjax.tune``'s default trains
in steps at 240 steps per member; each trained for every step, the best by
validation loss) is behind random search with 84 settings by at least 0.02 in
test loss (the median over seeds 0-9 of the per-seed difference; x1 draws
with seed ``s``, x4 with ``1000 + s``, as ``tune_quality.py``; the first
scout compared 16 with 64). On three
of the four problems of ``tune_quality.py`` that gap is under 0.005
(``results/tune_quality_cpu.txt``): there a method can match 4x the compute
without searching well. Results:
``results/tune_problems_scout_cpu.txt``.

Search problems (``SEARCH_PROBLEMS``), 240 steps per setting by default:

- ``classes_adamw``: synthetic 10 classes (``make_classification``: 40
  features, 20 informative, 5% label noise; 1000 / 1000 / 3000 train /
  validation / test), ReLU MLP 40-64-10, batch 32, AdamW on
  ``one_cycle(lr, steps, pct_start)``; space ``lr`` (log 1e-5..10),
  ``weight_decay`` (log 1e-4..10; decoupled, so its effect is ``lr *
  weight_decay``: a diagonal ridge), ``pct_start`` (0.1..0.5).
- ``illcond_momentum``: synthetic 8 classes (20 features, 10 informative,
  standardised and then scaled by 0.03..3 geometrically: ill-conditioned;
  2000 / 1000 / 2000), MLP 20-32-8, batch 64, SGD with momentum on a linear
  warmup (10% of the steps) and cosine decay, weight decay added to the
  gradient; space ``lr`` (log 1e-6..10), ``momentum`` (0..0.99),
  ``weight_decay`` (log 1e-6..1).
- ``noisy_momentum``: synthetic 4 classes with 20% label noise, features x 100
  (the good rate lies far below the usual 1e-3; 1600 / 1000 / 1400), MLP
  20-32-4, batch 64, SGD with momentum on ``one_cycle(lr, steps)``, weight
  decay added to the gradient; space ``lr`` (log 1e-9..1), ``momentum``
  (0.5..0.99), ``weight_decay`` (log 1e-6..1).
- ``friedman_nesterov``: Friedman #1 regression (noise 0.5, target
  standardised, MSE), features scaled 0.03..3 geometrically (2000 / 1000 /
  2000), MLP 10-32-1, batch 32, SGD with Nesterov momentum on
  ``one_cycle(lr, steps)``, weight decay added to the gradient; space ``lr``
  (log 1e-6..10), ``momentum`` (0..0.99), ``weight_decay`` (log 1e-6..1).
- ``cnn_nesterov``: the NNX CNN of ``suggestion_quality.py`` (two 3x3
  convolutions with BatchNorm, Dropout 0.2; digits images, 1000 / 200 / 400,
  batch 32; validation and test in eval mode), SGD with Nesterov momentum on
  ``one_cycle(lr, steps)``, weight decay added to the gradient; space ``lr``
  (log 1e-8..1000), ``momentum`` (0..0.999), ``weight_decay`` (log 1e-6..10).
- ``transformer_adamw``: the character-level transformer of
  ``suggestion_quality.py`` (one pre-LN block, width 16, Python standard-library
  source, batches of 8 windows; 32 windows to validate, 64 to test), AdamW on a
  linear warmup (1/8 of the steps) and cosine decay; space ``lr`` (log
  1e-6..100), ``weight_decay`` (log 1e-4..100).

The last two were widened once (from ``lr`` 1e-6..100, ``momentum``
0.5..0.99, ``weight_decay`` 1e-6..1; and ``lr`` 1e-5..10, ``weight_decay``
1e-4..10): at ``tune_quality.py``'s budgets (21 settings against 84, where the
scout's first run had 16 against 64) their random-search gaps were 0.0005 and
0.016. The new ranges were picked by the random-search gap alone (0.028 and
0.047 at 21 / 84 settings over 10 seeds), not by how tune did on them.

Held-out problems (``HELDOUT_PROBLEMS``), declared with the search problems
and meant to check a method's chosen settings, not to choose them (their
ranges were widened once, after a first scout measured gaps of 0.014 and
0.018, so that they separate too):

- ``classes_adam_l2``: synthetic 6 classes (30 features, 15 informative, 2
  clusters per class, 5% label noise; 1200 / 1000 / 2800), MLP 30-64-6, batch
  32, Adam with L2 weight decay added to the gradient, on ``one_cycle(lr,
  steps)``; space ``lr`` (log 1e-6..10), ``weight_decay`` (log 1e-6..10),
  ``b1`` (0.5..0.99).
- ``sines_nesterov``: regression of ``sin(2 x0) cos(x1) + 0.5 x2 x3`` plus
  noise 0.1 on 4 normal features (target standardised, MSE; 2000 / 1000 /
  2000), MLP 4-32-1, batch 32, SGD with Nesterov momentum on
  ``one_cycle(lr, steps)``, weight decay added to the gradient; space ``lr``
  (log 1e-7..100), ``momentum`` (0.5..0.99), ``weight_decay`` (log 1e-6..1).

Each problem has a fixed split, initialisation and batch order. A sweep of 64
settings x 240 steps takes about a second on two CPU cores for the MLPs, a
few seconds for the CNN and transformer (table in the results file).

The scout (``main``) runs random x1 and x4 for every problem and seed as
``tune_quality.py`` does (``lrjax.sweep(..., combine="zip", val_batches=val,
return_params=True)``; the best setting's parameters and model state scored
on the test batch in eval mode) and prints the gaps:

    python benchmarks/tune_problems.py [--seeds 10] [--steps 240] [--problems a,b] [--fast]

``--fast`` trains every seed's settings in one sweep (the same draws and
picks up to float rounding; for design work, no per-sweep wall times).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import machine_info, table
from suggestion_quality import cnn, functional, splits, standardize, transformer
from tune_quality import Setup, from_suite, random_grid

import lrjax
from lrjax import data

# ------------------------------------------------------------------------ helpers


def stack_val(X, y, n: int):
    """The validation split as ``n`` equal batches ``[n, B, ...]`` (the remainder dropped)."""
    B = len(X) // n
    return X[: n * B].reshape(n, B, *X.shape[1:]), y[: n * B].reshape(n, B)


def mlp_setup(X, y, tr, va, te, sizes, batch, steps, make, space, task="ce", seed=0):
    """A Setup for an MLP of ``lrjax.data`` on ``X[tr]`` (cross-entropy or MSE)."""
    X = np.asarray(X, np.float32)
    y = np.asarray(y, np.int32 if task == "ce" else np.float32)
    params = data.init_mlp(seed, sizes)
    batches = data.make_batches(X[tr], y[tr], steps, batch, seed + 1)

    def mse(p, b):
        return jnp.mean((data.mlp_apply(p, b[0])[:, 0] - b[1]) ** 2)

    loss = data.mlp_loss if task == "ce" else mse
    val = stack_val(X[va], y[va], 4)
    return Setup(loss, params, batches, val, (X[te], y[te]), make, space)


def one_cycle_sgd(steps: int, nesterov: bool = False):
    """``make(lr, momentum, weight_decay)``: SGD (+ momentum) on a one-cycle schedule,
    weight decay added to the gradient (so its effect scales with ``lr``)."""

    def make(lr, momentum, weight_decay):
        sched = lrjax.one_cycle(lr, steps, pct_start=0.25)
        return optax.chain(
            optax.add_decayed_weights(weight_decay),
            optax.sgd(sched, momentum=momentum, nesterov=nesterov),
        )

    return make


def warmup_cosine(lr, steps: int, warm: int):
    """Linear warmup over ``warm`` steps to ``lr``, then cosine decay to 0."""
    return lrjax.warmup(lrjax.cosine(lr, steps - warm), warm)


# ----------------------------------------------------------------------- problems


def classes_adamw(steps: int) -> Setup:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        5000, 40, n_informative=20, n_classes=10, n_clusters_per_class=1, flip_y=0.05,
        random_state=12,
    )  # fmt: skip
    tr, va, te = splits(len(X), 1000, 1000, seed=12)
    X = standardize(X, tr)

    def make(lr, weight_decay, pct_start):
        sched = lrjax.one_cycle(lr, steps, pct_start=pct_start)
        return optax.adamw(sched, weight_decay=weight_decay)

    space = {
        "lr": ("log", 1e-5, 10.0),
        "weight_decay": ("log", 1e-4, 10.0),
        "pct_start": (0.1, 0.5),
    }
    return mlp_setup(X, y, tr, va, te, (40, 64, 10), 32, steps, make, space)


def illcond_momentum(steps: int) -> Setup:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        5000, 20, n_informative=10, n_classes=8, class_sep=1.5, random_state=17
    )
    tr, va, te = splits(len(X), 2000, 1000, seed=17)
    # feature scales 0.03 .. 3 (geometric): an ill-conditioned problem
    X = standardize(X, tr) * np.geomspace(0.03, 3.0, 20).astype(np.float32)

    def make(lr, momentum, weight_decay):
        return optax.chain(
            optax.add_decayed_weights(weight_decay),
            optax.sgd(warmup_cosine(lr, steps, steps // 10), momentum=momentum),
        )

    space = {
        "lr": ("log", 1e-6, 10.0),
        "momentum": (0.0, 0.99),
        "weight_decay": ("log", 1e-6, 1.0),
    }
    return mlp_setup(X, y, tr, va, te, (20, 32, 8), 64, steps, make, space)


def noisy_momentum(steps: int) -> Setup:
    from sklearn.datasets import make_classification

    X, y = make_classification(4000, 20, n_informative=8, n_classes=4, flip_y=0.2, random_state=14)
    tr, va, te = splits(len(X), 1600, 1000, seed=14)
    X = standardize(X, tr, 100.0)  # features x 100: the good rate is far below 1e-3
    space = {
        "lr": ("log", 1e-9, 1.0),
        "momentum": (0.5, 0.99),
        "weight_decay": ("log", 1e-6, 1.0),
    }
    make = one_cycle_sgd(steps)
    return mlp_setup(X, y, tr, va, te, (20, 32, 4), 64, steps, make, space)


def friedman_nesterov(steps: int) -> Setup:
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(5000, n_features=10, noise=0.5, random_state=22)
    tr, va, te = splits(len(X), 2000, 1000, seed=22)
    # feature scales 0.03 .. 3 (geometric): an ill-conditioned problem
    X = standardize(X, tr) * np.geomspace(0.03, 3.0, 10).astype(np.float32)
    y = (y - y[tr].mean()) / y[tr].std()
    space = {
        "lr": ("log", 1e-6, 10.0),
        "momentum": (0.0, 0.99),
        "weight_decay": ("log", 1e-6, 1.0),
    }
    make = one_cycle_sgd(steps, nesterov=True)
    return mlp_setup(X, y, tr, va, te, (10, 32, 1), 32, steps, make, space, task="mse")


def cnn_nesterov(steps: int) -> Setup:
    def make(lr, momentum, weight_decay):
        return optax.chain(
            optax.add_decayed_weights(weight_decay),
            optax.sgd(lrjax.one_cycle(lr, steps, pct_start=0.25), momentum=momentum, nesterov=True),
        )

    space = {
        "lr": ("log", 1e-8, 1000.0),
        "momentum": (0.0, 0.999),
        "weight_decay": ("log", 1e-6, 10.0),
    }
    return from_suite(cnn(), steps, make, space)


def transformer_adamw(steps: int) -> Setup:
    def make(lr, weight_decay):
        return optax.adamw(warmup_cosine(lr, steps, steps // 8), weight_decay=weight_decay)

    space = {"lr": ("log", 1e-6, 100.0), "weight_decay": ("log", 1e-4, 100.0)}
    return from_suite(transformer(), steps, make, space)


def classes_adam_l2(steps: int) -> Setup:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        5000, 30, n_informative=15, n_classes=6, n_clusters_per_class=2, flip_y=0.05,
        random_state=21,
    )  # fmt: skip
    tr, va, te = splits(len(X), 1200, 1000, seed=21)
    X = standardize(X, tr)

    def make(lr, weight_decay, b1):
        return optax.chain(
            optax.add_decayed_weights(weight_decay),
            optax.adam(lrjax.one_cycle(lr, steps, pct_start=0.25), b1=b1),
        )

    space = {
        "lr": ("log", 1e-6, 10.0),
        "weight_decay": ("log", 1e-6, 10.0),
        "b1": (0.5, 0.99),
    }
    return mlp_setup(X, y, tr, va, te, (30, 64, 6), 32, steps, make, space)


def sines_nesterov(steps: int) -> Setup:
    rng = np.random.default_rng(18)
    X = rng.normal(size=(5000, 4)).astype(np.float32)
    y = np.sin(2 * X[:, 0]) * np.cos(X[:, 1]) + 0.5 * X[:, 2] * X[:, 3]
    y = y + 0.1 * rng.normal(size=len(X))
    tr, va, te = splits(len(X), 2000, 1000, seed=18)
    y = (y - y[tr].mean()) / y[tr].std()
    space = {
        "lr": ("log", 1e-7, 100.0),
        "momentum": (0.5, 0.99),
        "weight_decay": ("log", 1e-6, 1.0),
    }
    make = one_cycle_sgd(steps, nesterov=True)
    return mlp_setup(X, y, tr, va, te, (4, 32, 1), 32, steps, make, space, task="mse")


SEARCH_PROBLEMS: dict[str, Callable[[int], Setup]] = {
    "classes_adamw": classes_adamw,
    "illcond_momentum": illcond_momentum,
    "noisy_momentum": noisy_momentum,
    "friedman_nesterov": friedman_nesterov,
    "cnn_nesterov": cnn_nesterov,
    "transformer_adamw": transformer_adamw,
}

#: Declared with SEARCH_PROBLEMS and never used to choose a search method's settings.
HELDOUT_PROBLEMS: dict[str, Callable[[int], Setup]] = {
    "classes_adam_l2": classes_adam_l2,
    "sines_nesterov": sines_nesterov,
}

# ------------------------------------------------------------------------- scout


def member_test_losses(prob: Setup, grid) -> tuple[np.ndarray, np.ndarray]:
    """One zip sweep over ``grid``: ``(validation scores [N], test losses [N])``."""
    res = lrjax.sweep(
        prob.loss, prob.params, prob.batches, prob.make, grid, combine="zip",
        val_batches=prob.val, return_params=True, progress=False,
    )  # fmt: skip
    ev = functional(prob, prob.params)[3]
    take = lambda t: jax.tree.map(lambda a: a[0], t)  # the one seed
    test = jax.jit(jax.vmap(lambda p, s: ev(p, s, prob.test)))(take(res.params), take(res.state))
    return np.asarray(res.scores), np.asarray(test)


def pick(scores, test) -> float:
    """The test loss of the setting with the best validation score."""
    return float(test[int(np.argmin(np.where(np.isfinite(scores), scores, np.inf)))])


def scout_fast(prob: Setup, seeds: int, n: int = 21) -> tuple[list[float], list[float]]:
    """Random x1 and x4 for every seed from one sweep of all their settings."""
    grids = [random_grid(prob.space, n, s) for s in range(seeds)]
    grids += [random_grid(prob.space, 4 * n, 1000 + s) for s in range(seeds)]
    grid = {k: np.concatenate([g[k] for g in grids]) for k in prob.space}
    scores, test = member_test_losses(prob, grid)
    x1, x4, at = [], [], 0
    for i, g in enumerate(grids):
        n = len(next(iter(g.values())))
        (x1 if i < seeds else x4).append(pick(scores[at : at + n], test[at : at + n]))
        at += n
    return x1, x4


def scout(
    prob: Setup, seeds: int, n: int = 21
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Random x1 and x4 per seed as ``tune_quality`` runs them: ``(x1, x4, wall x1, wall x4)``."""
    test_loss = jax.jit(functional(prob, prob.params)[3])

    def run(grid):
        t0 = time.perf_counter()
        res = lrjax.sweep(
            prob.loss, prob.params, prob.batches, prob.make, grid, combine="zip",
            val_batches=prob.val, return_params=True, progress=False,
        )  # fmt: skip
        loss = float(test_loss(res.best_params(), res.best_state(), prob.test))
        return loss, time.perf_counter() - t0

    x1, x4, w1, w4 = [], [], [], []
    for s in range(seeds):
        loss, wall = run(random_grid(prob.space, n, s))
        x1.append(loss)
        w1.append(wall)
        loss, wall = run(random_grid(prob.space, 4 * n, 1000 + s))
        x4.append(loss)
        w4.append(wall)
    return x1, x4, w1, w4


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=240)
    ap.add_argument("--problems", default=None, help="comma-separated subset")
    ap.add_argument(
        "--settings", type=int, default=21,
        help="random x1's settings (21: what tune's default trains in steps at 240 steps)",
    )  # fmt: skip
    ap.add_argument(
        "--fast",
        action="store_true",
        help="one sweep of every seed's settings together (same draws; for design work)",
    )
    args = ap.parse_args()
    allp = {**SEARCH_PROBLEMS, **HELDOUT_PROBLEMS}
    names = args.problems.split(",") if args.problems else list(allp)
    print(machine_info())
    print(
        f"{args.steps} steps per setting, {args.seeds} seeds; random x1: {args.settings} "
        f"settings (seed s), x4: {4 * args.settings} (seed 1000 + s), each picked by "
        "validation loss, scored by test loss"
        + (" (--fast: all settings in one sweep, no per-sweep wall times)" if args.fast else "")
    )
    rows = []
    for name in names:
        t0 = time.perf_counter()
        prob = allp[name](args.steps)
        if args.fast:
            x1, x4 = scout_fast(prob, args.seeds, args.settings)
            w1 = w4 = [float("nan")]
        else:
            x1, x4, w1, w4 = scout(prob, args.seeds, args.settings)
        gap = [a - b for a, b in zip(x1, x4)]
        med = statistics.median(gap)
        kind = "search" if name in SEARCH_PROBLEMS else "held out"
        rows.append(
            [
                name,
                kind,
                ", ".join(prob.space),
                f"{statistics.median(x1):.4f}",
                f"{statistics.median(x4):.4f}",
                f"{med:+.4f}",
                f"{min(gap):+.4f} / {max(gap):+.4f}",
                "yes" if med >= 0.02 else "NO",
                f"{statistics.median(w1):.2f}",
                f"{statistics.median(w4):.2f}",
                f"{time.perf_counter() - t0:.0f}",
            ]
        )
        print(f"{name}: gap {med:+.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        print("  per-seed gaps: " + " ".join(f"{g:+.3f}" for g in gap), flush=True)
    print()
    header = [
        "problem", "kind", "space", "x1 test (median)", "x4 test (median)", "gap (median)",
        "gap min / max", ">= 0.02", "x1 sweep s", "x4 sweep s", "total s",
    ]  # fmt: skip
    print(table(rows, header))


if __name__ == "__main__":
    main()
