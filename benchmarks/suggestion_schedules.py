"""The peak rate of a scheduled run: suggestion rules against dense grids.

Most runs do not train at a constant rate: they decay it (cosine), or warm it up
and decay it (one-cycle, warmup + cosine). The range test measures constant
rates; this script checks which rule turns its result into a good *peak* for such
a run, on the problems of ``suggestion_quality.py`` (the suite and, with
``--problems heldout``, the held-out four).

For each problem and seed, the same range tests as there (T steps; lrjax parallel
with and without the validation split, and the ramp) give every rule's peak:

- ``suggest_for(B, schedule)``: lrjax's answer, the constant rate for ``B`` steps
  divided by the schedule's mean relative to its peak (about half: the peak is
  about twice the constant rate);
- ``best_lr`` as the peak (the parallel test's best rate);
- ``suggest()`` as the peak (the default suggestion, made for a constant rate);
- fastai's convention for ``fit_one_cycle``: the ramp's ``valley`` (and its
  ``minimum``) as the peak.

The ground truth trains every peak of a grid (32 log-spaced rates over the
problem's range, 24 for the CNN and the transformer) plus every suggested peak on
each schedule for ``B`` = 3T and 10T steps, from the same start on the same
batches, and reads the test loss; a rule's excess is ``(L - L*) / (L0 - L*)`` with
``L*`` the grid's best for that schedule and budget.

    python benchmarks/suggestion_schedules.py --out benchmarks/results/suggestion_schedules_cpu.txt
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import Report, machine_info, table
from suggestion_quality import (
    OPTIMIZERS,
    K,
    Problem,
    add_problem_args,
    fmt,
    functional,
    make_trainer,
    safe,
    selected_problems,
)

import lrjax


def warmup_cosine(peak, total):
    warm = max(1, total // 20)
    return lrjax.warmup(lrjax.cosine(peak, total - warm), warm)


#: ``name -> (peak, total_steps) -> schedule``
SCHEDULES = {
    "cosine": lambda peak, total: lrjax.cosine(peak, total),
    "one-cycle": lambda peak, total: lrjax.one_cycle(peak, total),
    "warmup 5% + cosine": warmup_cosine,
}
RULES = (
    "val: suggest_for(B, schedule)",
    "val: best_lr as peak",
    "val: suggest() as peak",
    "suggest_for(B, schedule)",
    "best_lr as peak",
    "suggest() = near_best as peak",
    "ramp valley as peak (fastai)",
    "ramp minimum as peak",
)


def peaks(prob: Problem, seed: int, budgets: tuple[int, ...]) -> dict[tuple[str, int, str], float]:
    """``{(schedule, budget, rule): peak}`` for one seed."""
    T = prob.test_steps
    model = prob.init(seed)
    batches = prob.batches(seed, T)
    val = jax.tree.map(lambda a: np.asarray(a)[None], prob.val)
    common = dict(
        optimizer=OPTIMIZERS[prob.optimizer],
        min_lr=prob.min_lr,
        max_lr=prob.max_lr,
        num_steps=T,
        progress=False,
    )
    key = jax.random.PRNGKey(seed)
    par = lrjax.range_test(prob.loss, model, batches, num_lrs=K, key=key, **common)
    parv = lrjax.range_test(
        prob.loss, model, batches, num_lrs=K, key=key, val_batches=val, **common
    )
    ramp = lrjax.lr_find(prob.loss, model, batches, **common)
    out = {}
    for name, make in SCHEDULES.items():
        for b in budgets:
            shape = make(1.0, b)
            rates = {
                "val: suggest_for(B, schedule)": lambda: parv.suggest_for(b, schedule=shape),
                "val: best_lr as peak": lambda: parv.best_lr,
                "val: suggest() as peak": lambda: parv.suggest(),
                "suggest_for(B, schedule)": lambda: par.suggest_for(b, schedule=shape),
                "best_lr as peak": lambda: par.best_lr,
                "suggest() = near_best as peak": lambda: par.suggest(),
                "ramp valley as peak (fastai)": lambda: ramp.suggest("valley"),
                "ramp minimum as peak": lambda: ramp.suggest("minimum"),
            }
            for rule, fn in rates.items():
                out[(name, b, rule)] = safe(fn)
    return out


def run_problem(prob: Problem, seeds: int, grid_n: int, log) -> dict:
    T = prob.test_steps
    budgets = (3 * T, 10 * T)
    grid = np.geomspace(prob.min_lr, prob.max_lr, prob.grid or grid_n)
    t0 = time.perf_counter()
    found = [peaks(prob, s, budgets) for s in range(seeds)]
    t_sugg = time.perf_counter() - t0
    fs = [functional(prob, prob.init(s)) for s in range(seeds)]
    params = jax.tree.map(lambda *x: jnp.stack(x), *[f[0] for f in fs])
    rest = jax.tree.map(lambda *x: jnp.stack(x), *[f[1] for f in fs])
    batches = jax.tree.map(
        lambda *x: jnp.stack(x), *[prob.batches(s, budgets[-1]) for s in range(seeds)]
    )
    test = jax.tree.map(jnp.asarray, prob.test)
    L0 = np.array([float(jax.jit(fs[0][3])(f[0], f[1], test)) for f in fs])
    excess: dict[tuple[str, int, str], list[float]] = {}
    t1 = time.perf_counter()
    for name, make in SCHEDULES.items():
        for b in budgets:
            # every seed trains the grid and its own suggested peaks (deduplicated, padded)
            per_seed = []
            for rates in found:
                vals = [v for (n, bb, _), v in rates.items() if n == name and bb == b]
                vals = np.array([v for v in vals if np.isfinite(v) and v > 0])
                per_seed.append(np.unique(np.concatenate([grid, vals])))
            n = max(len(u) for u in per_seed)
            lr_mat = np.stack([np.pad(u, (0, n - len(u)), mode="edge") for u in per_seed])
            train = make_trainer(prob, fs[0][2], fs[0][3], (b,), schedule=make)
            loss = np.asarray(train(jnp.asarray(lr_mat, jnp.float32), params, rest, batches))
            for s in range(seeds):
                lookup = dict(zip(lr_mat[s].tolist(), loss[s, :, 0].tolist()))
                g = np.array([lookup[x] for x in grid.tolist()], np.float64)
                star = float(np.min(np.where(np.isfinite(g), g, np.inf)))
                for rule in RULES:
                    v = found[s][(name, b, rule)]
                    L = lookup.get(float(v), math.nan) if np.isfinite(v) and v > 0 else math.nan
                    ok = np.isfinite(L) and L0[s] >= L
                    e = (L - star) / (L0[s] - star) if ok else 1.0
                    excess.setdefault((name, b // T, rule), []).append(e)
    log(
        f"  {prob.name}: suggestions {t_sugg:.0f} s, ground truth "
        f"{time.perf_counter() - t1:.0f} s ({len(SCHEDULES)} schedules x 2 budgets)"
    )
    return {k: float(np.mean(v)) for k, v in excess.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--grid", type=int, default=32, help="peaks in the dense grid")
    add_problem_args(ap)
    args = ap.parse_args()
    log = Report()

    log(f"{machine_info()}, os.cpu_count() = {os.cpu_count()}")
    with contextlib.suppress(OSError):
        log(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    probs = selected_problems(args.problems)
    log(
        f"\nrange tests of T steps as in suggestion_quality.py (K = {K}); each peak trained "
        f"on each schedule for B = 3T and 10T steps; ground truth: {args.grid} (CNN, "
        f"transformer: 24) log-spaced peaks; {args.seeds} seeds; cells: mean excess\n"
    )
    t0 = time.perf_counter()
    results = {p.name: run_problem(p, args.seeds, args.grid, log) for p in probs}
    log(f"  total {time.perf_counter() - t0:.0f} s")
    for mult in (3, 10):
        rows, best = [], {}
        for name in SCHEDULES:
            for rule in RULES:
                cells = [results[p.name][(name, mult, rule)] for p in probs]
                mx, mn = max(cells), float(np.mean(cells))
                good = sum(c <= 0.05 for c in cells)
                rows.append(
                    [f"{name}: {rule}", *map(fmt, cells), fmt(mx), fmt(mn), f"{good}/{len(cells)}"]
                )
                best[(name, rule)] = (mx, mn)
        log(f"\n### Budget {mult}T: mean excess over {args.seeds} seeds\n")
        log(table(rows, ["schedule: rule", *[p.name for p in probs], "max", "mean", "<= 0.05"]))
        for name in SCHEDULES:
            win = min(RULES, key=lambda r, name=name: best[(name, r)])
            by_mean = min(RULES, key=lambda r, name=name: best[(name, r)][::-1])
            log(
                f"{name}, {mult}T: lowest max {win} ({best[(name, win)][0]:.3f}); "
                f"lowest mean {by_mean} ({best[(name, by_mean)][1]:.3f})"
            )
    log.write(args.out)


if __name__ == "__main__":
    main()
