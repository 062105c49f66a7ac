"""How good are the suggested learning rates? Each one against a dense grid, one run.

On the digits MLP of ``lrjax.data`` (64-64-10, Adam, batch 128; 1397 training
and 400 held-out images, a fixed split), for each of ``--seeds`` seeds (a new
initialisation and batch order):

1. the suggestions are computed, each from a 100-step test over rates
   ``1e-5 .. 10``: lrjax parallel (32 rates, ``valley`` and ``minimum``),
   lrjax sweep (``valley`` and ``steep``), and torch-lr-finder's own suggestion
   (steepest gradient) from ``LRFinder.range_test`` on the same model in
   PyTorch (same weights, same batches);
2. every suggested rate, and every rate of a dense grid (``--grid`` log-spaced
   rates over the same range), trains the model with constant-rate Adam for a
   fixed budget of ``--budget`` steps, from the same start on the same batches;
3. the final loss on the whole training set (and on the held-out set) is
   compared with the best grid rate's.

The evaluation trainer is written here (a plain ``jit(vmap(scan))``), not
lrjax's engine, so it does not share code with what it judges. "loss / best"
is the mean over seeds of ``final loss(suggestion) / final loss(best grid
rate)`` (1.00 is as good as the best rate of the grid); "grid rank" is where
the suggestion's loss would rank among the grid rates (1 = better than all).

    python benchmarks/suggestion_quality.py [--seeds 3] [--budget 200] [--grid 64]
"""

from __future__ import annotations

import argparse
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import machine_info, table
from _torch_ref import lr_finder_sweep, torch_batches

import lrjax
from lrjax import data

MIN_LR, MAX_LR, TEST_STEPS, K = 1e-5, 10.0, 100, 32


def split(X, y, n_test=400, seed=0):
    order = np.random.default_rng(seed).permutation(len(X))
    te, tr = order[:n_test], order[n_test:]
    return (X[tr], y[tr]), (X[te], y[te])


def make_trainer(budget: int):
    """``train(lrs, params, xb, yb, evals) -> (train_loss, test_loss, test_acc)`` per rate."""

    def one(lr, params, xb, yb, Xtr, ytr, Xte, yte):
        opt = optax.adam(lr)

        def step(carry, batch):
            p, s = carry
            g = jax.grad(data.mlp_loss)(p, batch)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), (xb[:budget], yb[:budget]))
        logits = data.mlp_apply(p, Xte)
        return (
            data.mlp_loss(p, (Xtr, ytr)),
            data.mlp_loss(p, (Xte, yte)),
            jnp.mean(jnp.argmax(logits, -1) == yte),
        )

    return jax.jit(jax.vmap(one, in_axes=(0,) + (None,) * 7))


def finite_or_inf(x):
    x = np.asarray(x, np.float64)
    return np.where(np.isfinite(x), x, np.inf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=200, help="training steps per evaluated rate")
    ap.add_argument("--grid", type=int, default=64, help="rates in the dense grid")
    args = ap.parse_args()

    X, y = data.load_digits()
    (Xtr, ytr), (Xte, yte) = split(X, y)
    sizes = data.mlp_sizes(X, y)
    train = make_trainer(args.budget)
    grid = np.geomspace(MIN_LR, MAX_LR, args.grid)
    methods = [
        "lrjax parallel, valley",
        "lrjax parallel, minimum",
        "lrjax parallel, best_lr",
        "lrjax sweep, valley",
        "lrjax sweep, steep",
        "torch-lr-finder (steepest)",
    ]
    found: dict[str, list[float]] = {m: [] for m in methods}
    train_loss: dict[str, list[float]] = {m: [] for m in ["grid best", *methods]}
    test_loss: dict[str, list[float]] = {m: [] for m in ["grid best", *methods]}
    test_acc: dict[str, list[float]] = {m: [] for m in ["grid best", *methods]}
    ranks: dict[str, list[int]] = {m: [] for m in methods}
    grid_best_lr = []

    print(machine_info())
    print(
        f"digits MLP {'-'.join(map(str, sizes))}, Adam, batch 128; range tests: {TEST_STEPS} "
        f"steps over {MIN_LR:g}..{MAX_LR:g}; evaluation: {args.budget} steps at a constant "
        f"rate; grid: {args.grid} rates; {args.seeds} seeds\n"
    )
    for seed in range(args.seeds):
        params = data.init_mlp(jax.random.PRNGKey(seed), sizes)
        budget_batches = data.make_batches(Xtr, ytr, max(args.budget, TEST_STEPS), 128, seed)
        batches = jax.tree.map(lambda b: b[:TEST_STEPS], budget_batches)
        rt = dict(min_lr=MIN_LR, max_lr=MAX_LR, num_steps=TEST_STEPS, progress=False)
        par = lrjax.range_test(data.mlp_loss, params, batches, num_lrs=K, **rt)
        swp = lrjax.range_test(data.mlp_loss, params, batches, mode="sweep", **rt)
        _, _, torch_lr = lr_finder_sweep(params, torch_batches(batches), MIN_LR, MAX_LR, TEST_STEPS)
        lrs = {
            "lrjax parallel, valley": par.suggest("valley"),
            "lrjax parallel, minimum": par.suggest("minimum"),
            "lrjax parallel, best_lr": math.nan if par.best_lr is None else par.best_lr,
            "lrjax sweep, valley": swp.suggest("valley"),
            "lrjax sweep, steep": swp.suggest("steep"),
            "torch-lr-finder (steepest)": math.nan if torch_lr is None else torch_lr,
        }
        evals = (budget_batches[0], budget_batches[1], Xtr, ytr, Xte, yte)
        g_train, g_test, g_acc = (np.asarray(v) for v in train(jnp.asarray(grid), params, *evals))
        g_train = finite_or_inf(g_train)
        best = int(np.argmin(g_train))
        grid_best_lr.append(grid[best])
        train_loss["grid best"].append(g_train[best])
        test_loss["grid best"].append(float(g_test[best]))
        test_acc["grid best"].append(float(g_acc[best]))
        s_lrs = np.array([lrs[m] for m in methods])
        ok = np.isfinite(s_lrs)
        s_train, s_test, s_acc = (
            np.asarray(v)
            for v in train(jnp.asarray(np.where(ok, s_lrs, 1e-5), jnp.float32), params, *evals)
        )
        s_train = np.where(ok, finite_or_inf(s_train), np.inf)
        for i, m in enumerate(methods):
            found[m].append(s_lrs[i])
            train_loss[m].append(s_train[i])
            test_loss[m].append(float(s_test[i]) if ok[i] else math.inf)
            test_acc[m].append(float(s_acc[i]) if ok[i] else 0.0)
            ranks[m].append(int(np.sum(g_train < s_train[i])) + 1)
        print(
            f"seed {seed}: grid best {grid[best]:.3g} (train loss {g_train[best]:.4f}); "
            + ", ".join(f"{m}: {lrs[m]:.3g}" for m in methods),
            flush=True,
        )

    def geo(v):
        v = np.asarray(v, np.float64)
        v = v[np.isfinite(v)]
        return f"{np.exp(np.mean(np.log(v))):.3g}" if v.size else "-"

    best_train = np.asarray(train_loss["grid best"])
    rows = [
        [
            f"grid best of {args.grid} (oracle)",
            geo(grid_best_lr),
            f"{np.mean(best_train):.4f}",
            "1.00",
            f"{np.mean(test_loss['grid best']):.4f}",
            f"{100 * np.mean(test_acc['grid best']):.1f}%",
            "-",
        ]
    ]
    for m in methods:
        tr = np.asarray(train_loss[m])
        rows.append(
            [
                m,
                geo(found[m]),
                f"{np.mean(tr):.4f}",
                f"{np.mean(tr / best_train):.2f}",
                f"{np.mean(test_loss[m]):.4f}",
                f"{100 * np.mean(test_acc[m]):.1f}%",
                "/".join(map(str, ranks[m])),
            ]
        )
    print()
    print(
        table(
            rows,
            [
                "suggestion",
                "rate (geo-mean)",
                "final train loss",
                "loss / best",
                "held-out loss",
                "held-out acc",
                f"grid rank per seed (of {args.grid})",
            ],
        )
    )


if __name__ == "__main__":
    main()
