"""How good is ``lrjax.tune``? PBT and halving against random search, a grid and Optuna.

Problems in three groups, each with a held-out validation split (what every method
ranks by) and a separate test split (what the table reports):

- ``digits``: the digits MLP of ``lrjax.data`` (64-64-10), AdamW with a
  one-cycle schedule; tuned: ``lr`` (log 1e-4..1), ``pct_start``
  (0.1..0.5), ``weight_decay`` (log 1e-5..1e-1).
- ``regression``: a tanh MLP (4-64-1) on ``sin(2 x0) + 0.5 x1 x2`` (plus noise
  of standard deviation 0.1), SGD with
  momentum and a one-cycle schedule; tuned: ``lr`` (log 1e-4..3),
  ``momentum`` (0.5..0.99), ``pct_start`` (0.1..0.5).
- ``cnn``: the NNX CNN of ``suggestion_quality.py`` (two 3x3 convolutions with
  BatchNorm, Dropout 0.2, 2686 parameters) on the digits images (1000 / 200 /
  400 train / validation / test, batch 32), SGD with Nesterov momentum 0.9,
  weight decay added to the gradient and a one-cycle schedule; tuned:
  ``lr`` (log 1e-3..3), ``pct_start`` (0.1..0.5), ``weight_decay``
  (log 1e-5..1e-2). Validation and test losses in eval mode (BatchNorm on its
  running statistics, no Dropout).
- ``transformer``: the character-level transformer of ``suggestion_quality.py``
  (one pre-LN block, width 16, 2 heads, context 16, 4432 parameters, a plain
  pytree) on Python standard-library source (batches of 8 windows; 32 windows
  to validate, 64 to test), AdamW with a one-cycle schedule; tuned:
  ``lr`` (log 1e-4..0.3), ``pct_start`` (0.1..0.5), ``weight_decay``
  (log 1e-4..0.3).

These are the ``original`` problems (every method matched random search with
4x the compute on three of them, so they do not tell a good search from a
blind one). ``tune_problems.py`` adds six ``search`` problems chosen so that
random search with 16 settings is at least 0.02 behind 64 settings (a wide
``lr`` range with a diverging end, interacting weight decay, warmup and
momentum; SGD, Nesterov and AdamW; a BatchNorm CNN and a transformer) and two
``heldout`` ones, declared before tune's defaults were chosen and reported
apart. Every problem names its rate ``lr``, so ``lrjax.tune``'s rate test runs
by default.

Methods, every one counted in training steps (rate tests and cooldown probes
included), relative to tune's default:

- ``tune defaults``: ``lrjax.tune`` as a user calls it: successive halving
  over 5 rounds with 40 members (40 -> 20 -> 10 -> 5 -> 3 trained), the
  cooldown probe and the rate test on ``lr``;
- ``tune halving 40, no rate test``: the same with ``rate=False``;
- ``tune pbt 16``: PBT with 16 members over 8 rounds (about halving's
  compute; the default before this benchmark chose halving), with and without
  the rate test;
- ``random, same steps``: as many settings drawn from the space as tune's
  default trains in steps (21 for 240 steps), each trained for all steps,
  best by validation loss;
- ``random x4``: four times as many settings (the reference of the excess);
- ``grid``: a dense grid of about the same size as random x4 (values
  log-spaced on log dimensions, every option of a choice), trained once;
- ``optuna``: Optuna's TPE sampler with its median pruner (reports after each
  of the same 8 rounds, pruning from the sixth trial on), trials run as jitted
  ``lax.scan`` chunks from the host (an NNX model split into parameters and
  the rest of its state, trained functionally in train mode), until tune's
  default steps are spent (pruned trials free steps for more trials); skipped
  when Optuna is not installed (``pip install optuna``).

The random and grid runs use ``lrjax.sweep`` (``return_params=True``); the
chosen member's parameters are scored on the test split by the loss function.
For the NNX CNN the model state counts too: the BatchNorm statistics of tune's
best member (``result.state``) and of the sweep's best setting
(``result.best_state()``).
Each method runs with ``--seeds`` search seeds (tune's ``key``; the random
draws); per problem the table shows the median test loss over seeds and every
method's excess over ``random x4`` (the per-seed differences: their median,
mean and largest, the worst seed), and its steps over tune's default. A
summary per group follows: method x problem, the median excess and the worst
seed's.
Wall time is the median over seeds (the first call of a shape compiles; later
seeds reuse the program, so the median is the warm time for 3 seeds or more).

    python benchmarks/tune_quality.py [--seeds 10] [--steps 240] [--problems search,heldout]

``--steps`` must be a multiple of 40 (the tune methods' 8, 4 and 5 rounds).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import machine_info, table
from suggestion_quality import Problem, cnn, functional, transformer

import lrjax
from lrjax import data

POP, ROUNDS = 16, 8
#: Halving's population: 40 members over 5 rounds (40, 20, 10, 5, 3 trained)
#: cost about what 16 members trained for every step cost.
HALVING_POP = 40


class Setup(NamedTuple):
    """One problem as every method sees it (``loss`` and ``nnx`` as in ``Problem``,
    which is what ``suggestion_quality.functional`` reads)."""

    loss: Callable[[Any, Any], jax.Array]  # (params | model, batch) -> scalar
    params: Any  # a pytree or an nnx.Module
    batches: Any  # [steps, ...]
    val: Any  # stacked evaluation batches [n, ...]
    test: Any  # one batch
    make: Callable[..., optax.GradientTransformation]
    space: dict[str, Any]
    nnx: bool = False


def adamw_one_cycle(steps: int):
    """``make_optimizer(lr, pct_start, weight_decay)``: AdamW on a one-cycle schedule."""

    def make(lr, pct_start, weight_decay):
        sched = lrjax.one_cycle(lr, steps, pct_start=pct_start)
        return optax.adamw(sched, weight_decay=weight_decay)

    return make


def digits_problem(steps: int) -> Setup:
    X, y = data.load_digits()
    order = np.random.default_rng(0).permutation(len(X))
    tr, va, te = order[:1100], order[1100:1484], order[1484:]
    loss_fn, params, batches = data.make_demo(num_steps=steps, data=(X[tr], y[tr]))
    val = (X[va].reshape(3, 128, 64), y[va].reshape(3, 128))
    test = (X[te], y[te])

    make = adamw_one_cycle(steps)
    space = {
        "lr": ("log", 1e-4, 1.0),
        "pct_start": (0.1, 0.5),
        "weight_decay": ("log", 1e-5, 1e-1),
    }
    return Setup(loss_fn, params, batches, val, test, make, space)


def regression_problem(steps: int) -> Setup:
    rng = np.random.default_rng(0)

    def draw(*shape):
        x = rng.normal(size=(*shape, 4)).astype(np.float32)
        noise = 0.1 * rng.normal(size=shape)
        return x, (np.sin(2 * x[..., 0]) + 0.5 * x[..., 1] * x[..., 2] + noise).astype(np.float32)

    batches, val, test = draw(steps, 32), draw(8, 128), draw(4096)
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    params = {"w1": jax.random.normal(k1, (4, 64)) * 0.5, "w2": jax.random.normal(k2, (64,)) * 0.1}

    def loss_fn(p, b):
        return jnp.mean((jnp.tanh(b[0] @ p["w1"]) @ p["w2"] - b[1]) ** 2)

    def make(lr, momentum, pct_start):
        return optax.sgd(lrjax.one_cycle(lr, steps, pct_start=pct_start), momentum=momentum)

    space = {
        "lr": ("log", 1e-4, 3.0),
        "momentum": (0.5, 0.99),
        "pct_start": (0.1, 0.5),
    }
    return Setup(loss_fn, params, batches, val, test, make, space)


def from_suite(prob: Problem, steps: int, make, space) -> Setup:
    """A ``suggestion_quality`` problem (first initialisation and batch order) as a Setup."""
    val = jax.tree.map(lambda a: np.asarray(a)[None], prob.val)  # one stacked batch
    params = prob.init(0)
    return Setup(prob.loss, params, prob.batches(0, steps), val, prob.test, make, space, prob.nnx)


def cnn_problem(steps: int) -> Setup:
    def make(lr, pct_start, weight_decay):
        sched = lrjax.one_cycle(lr, steps, pct_start=pct_start)
        return optax.chain(
            optax.add_decayed_weights(weight_decay),
            optax.sgd(sched, momentum=0.9, nesterov=True),
        )

    space = {
        "lr": ("log", 1e-3, 3.0),
        "pct_start": (0.1, 0.5),
        "weight_decay": ("log", 1e-5, 1e-2),
    }
    return from_suite(cnn(), steps, make, space)


def transformer_problem(steps: int) -> Setup:
    make = adamw_one_cycle(steps)
    space = {
        "lr": ("log", 1e-4, 0.3),
        "pct_start": (0.1, 0.5),
        "weight_decay": ("log", 1e-4, 0.3),
    }
    return from_suite(transformer(), steps, make, space)


ORIGINAL_PROBLEMS = {
    "digits": digits_problem,
    "regression": regression_problem,
    "cnn": cnn_problem,
    "transformer": transformer_problem,
}


def random_grid(space, n, seed):
    r = np.random.default_rng(seed)
    out = {}
    for name, dim in space.items():
        if isinstance(dim, list):
            out[name] = np.asarray(dim)[r.integers(0, len(dim), n)]
        elif dim[0] == "log":
            out[name] = np.exp(r.uniform(np.log(dim[1]), np.log(dim[2]), n))
        else:
            out[name] = r.uniform(dim[0], dim[1], n)
    return out


def dense_grid(space, size=64):
    """About ``size`` settings: ``round(size ** (1 / D))`` values per dimension (every
    option of a choice), log-spaced on log dimensions."""
    per_dim = max(2, round(size ** (1 / len(space))))
    axes = []
    for dim in space.values():
        if isinstance(dim, list):
            axes.append(np.asarray(dim))
        elif dim[0] == "log":
            axes.append(np.geomspace(dim[1], dim[2], per_dim))
        else:
            axes.append(np.linspace(dim[0], dim[1], per_dim))
    rows = list(itertools.product(*axes))
    return {name: np.array([r[i] for r in rows]) for i, name in enumerate(space)}


def optuna_search(prob: Setup, steps, seed, budget):
    """TPE + median pruner at ``budget`` training steps: ``(best params, their model state,
    trials run)``.

    Trains functionally (``suggestion_quality.functional``): a plain pytree as
    it is, an NNX model split into its parameters and the rest of its state
    (BatchNorm statistics, Dropout's RNG counters), carried in train mode.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    L = steps // ROUNDS
    params, rest, step_loss, eval_loss = functional(prob, prob.params)
    batches, val, make, space = prob.batches, prob.val, prob.make, prob.space

    @jax.jit
    def init(hs, p):
        return make(**hs).init(p)

    @jax.jit
    def train_chunk(p, ms, s, hs, xs):
        tx = make(**hs)

        def body(c, b):
            p, ms, s = c
            g, ms = jax.grad(step_loss, has_aux=True)(p, ms, b)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), ms, s), None

        return jax.lax.scan(body, (p, ms, s), xs)[0]

    @jax.jit
    def val_loss(p, ms):
        return jnp.mean(jax.lax.map(lambda b: eval_loss(p, ms, b), val))

    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
    )
    used, best, best_model, trials = 0, np.inf, (params, rest), 0
    while used + L <= budget:
        trial = study.ask()
        trials += 1
        hs = {}
        for name, dim in space.items():
            if isinstance(dim, list):
                hs[name] = jnp.asarray(trial.suggest_categorical(name, dim))
                continue
            log = dim[0] == "log"
            lo, hi = dim[1:] if log else dim
            hs[name] = jnp.float32(trial.suggest_float(name, lo, hi, log=log))
        p, ms, s = params, rest, init(hs, params)
        v = np.nan
        for r in range(ROUNDS):
            if used + L > budget:
                break
            xs = jax.tree.map(lambda a, r=r: a[r * L : (r + 1) * L], batches)
            p, ms, s = train_chunk(p, ms, s, hs, xs)
            used += L
            v = float(val_loss(p, ms))
            if not np.isfinite(v):
                break
            trial.report(v, r)
            if trial.should_prune():
                break
        else:
            study.tell(trial, v)
            if v < best:
                best, best_model = v, (p, ms)
            continue
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return *best_model, trials


def all_problems() -> dict[str, dict[str, Callable[[int], Setup]]]:
    """The problem groups: the four original ones, the six search ones and the two
    held out (``tune_problems.py``; declared before any default was chosen)."""
    import tune_problems

    return {
        "original": ORIGINAL_PROBLEMS,
        "search": tune_problems.SEARCH_PROBLEMS,
        "heldout": tune_problems.HELDOUT_PROBLEMS,
    }


def tune_cost(method: str, population: int, rounds: int, steps: int, rate_test: bool) -> int:
    """Training steps ``lrjax.tune`` spends with its default probe lengths (checked
    against ``result.steps`` on every run)."""
    from lrjax import _search

    cooldown = _search.default_cooldown(steps // rounds) if rounds > 1 else 0
    cost = _search.search_steps(_search.METHODS[method], population, rounds, steps, cooldown)
    if rate_test:
        cost += _search.rate_test_points(population) * _search.default_test_steps(steps)
    return cost


DEFAULT = "tune defaults (halving 40, rate test)"
RANDOM = "random, same steps"
RANDOM4 = "random x4"


def run_problem(pname: str, prob: Setup, steps: int, seeds: int, log) -> dict[str, Any]:
    """Every method on one problem over ``seeds`` search seeds; the per-seed table."""
    loss_fn, params, batches, val, test, make, space = prob[:7]
    # (params, model state, batch) -> loss in eval mode; model state () for a pytree
    test_loss = jax.jit(functional(prob, params)[3])
    has_rate = "lr" in space

    def run_tune(seed, rate=None, **kw):
        """``lrjax.tune`` with its defaults but for ``rate`` and ``kw`` (method, ...)."""
        res = lrjax.tune(
            loss_fn, params, batches, make, space, num_steps=steps, val_batches=val,
            key=jax.random.PRNGKey(seed), progress=False, rate=rate, **kw,
        )  # fmt: skip
        expected = tune_cost(res.method, res.population, res.rounds, steps, res.rate is not None)
        assert res.rate == ("lr" if has_rate and rate is None else None), res.rate
        assert res.steps == expected, (res.steps, expected)
        return float(test_loss(res.params, res.state, test))

    def run_sweep(grid):
        res = lrjax.sweep(
            loss_fn, params, batches, make, grid, combine="zip", val_batches=val,
            return_params=True, progress=False,
        )  # fmt: skip
        return float(test_loss(res.best_params(), res.best_state(), test))

    unit = tune_cost("halving", HALVING_POP, 5, steps, has_rate)  # the default's steps
    n_random = max(1, round(unit / steps))
    grid = dense_grid(space, 4 * n_random)
    grid_size = len(next(iter(grid.values())))
    grid_loss: list[float] = []  # the grid is the same for every seed: trained once

    def run_grid(seed):
        if not grid_loss:
            grid_loss.append(run_sweep(grid))
        return grid_loss[0]

    methods = {
        DEFAULT: (run_tune, unit),
        f"tune halving {HALVING_POP}, no rate test": (
            lambda s: run_tune(s, rate=False),
            tune_cost("halving", HALVING_POP, 5, steps, False),
        ),
        f"tune pbt {POP}, rate test": (
            lambda s: run_tune(s, method="pbt"),
            tune_cost("pbt", POP, ROUNDS, steps, has_rate),
        ),
        f"tune pbt {POP}, no rate test": (
            lambda s: run_tune(s, rate=False, method="pbt"),
            tune_cost("pbt", POP, ROUNDS, steps, False),
        ),
        RANDOM: (lambda s: run_sweep(random_grid(space, n_random, s)), n_random * steps),
        RANDOM4: (
            lambda s: run_sweep(random_grid(space, 4 * n_random, 1000 + s)),
            4 * n_random * steps,
        ),
        "grid, about x4": (run_grid, grid_size * steps),
    }
    trials: list[int] = []
    try:
        import optuna  # noqa: F401

        def run_optuna(seed):
            p, ms, n = optuna_search(prob, steps, seed, budget=unit)
            trials.append(n)
            return float(test_loss(p, ms, test))

        methods["optuna TPE+median, same steps"] = (run_optuna, unit)
    except ImportError:
        log("(optuna not installed: no optuna row)")
    losses: dict[str, list[float]] = {m: [] for m in methods}
    walls: dict[str, list[float]] = {m: [] for m in methods}
    for seed in range(seeds):
        for m, (fn, _) in methods.items():  # interleaved: load changes hit every method
            t0 = time.perf_counter()
            losses[m].append(fn(seed))
            walls[m].append(time.perf_counter() - t0)
    ref = losses[RANDOM4]
    excess = {m: [a - b for a, b in zip(losses[m], ref)] for m in methods}
    rows = [
        [
            m,
            f"{statistics.median(losses[m]):.4f}",
            " ".join(f"{v:.4f}" for v in losses[m]),
            f"{statistics.median(excess[m]):+.4f}",
            f"{statistics.mean(excess[m]):+.4f}",
            f"{max(excess[m]):+.4f}",
            f"{cost / unit:.2f}",
            f"{statistics.median(walls[m]):.2f}",
        ]
        for m, (_, cost) in methods.items()
    ]
    log()
    log(f"### {pname} (space {space})")
    header = ["method", "test loss (median)", "per seed", "vs random x4: median", "mean",
              "worst seed", "steps / tune default", "wall s (median)"]  # fmt: skip
    log(table(rows, header))
    log(
        f"tune default: {unit} steps; random: {n_random} settings, x4: {4 * n_random}; "
        f"grid: {grid_size} settings"
    )
    if trials:
        log(f"optuna trials per search (pruned ones included): {trials}")
    return {"excess": excess, "cost": {m: c / unit for m, (_, c) in methods.items()}}


def summary(group: str, results: dict[str, dict[str, Any]], log) -> None:
    """Method x problem: the median excess over random x4 and the worst seed's."""
    probs = list(results)
    methods = [m for m in next(iter(results.values()))["excess"] if m != RANDOM4]
    rows = []
    for m in methods:
        cells = []
        for p in probs:
            e = results[p]["excess"][m]
            cells.append(f"{statistics.median(e):+.3f} ({max(e):+.3f})")
        cost = statistics.median(results[p]["cost"][m] for p in probs)
        rows.append([m, *cells, f"{cost:.2f}"])
    log()
    log(f"## Summary: {group} problems")
    log("median test-loss excess over random x4 (worst seed); steps relative to tune's default")
    log(table(rows, ["method", *probs, "steps"]))
    wins = sum(
        statistics.median(r["excess"][DEFAULT]) < statistics.median(r["excess"][RANDOM])
        for r in results.values()
    )
    close = sum(statistics.median(r["excess"][DEFAULT]) <= 0.01 for r in results.values())
    gaps = sum(statistics.median(r["excess"][RANDOM]) >= 0.02 for r in results.values())
    log(
        f"tune's default beats random at the same steps on {wins}/{len(results)}; within 0.01 "
        f"of random x4 on {close}/{len(results)}; random is >= 0.02 behind x4 on "
        f"{gaps}/{len(results)}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=240)
    ap.add_argument(
        "--problems", default="search,heldout,original",
        help="comma-separated groups (original, search, heldout) or problem names",
    )  # fmt: skip
    args = ap.parse_args()
    log = lambda *a: print(*a, flush=True)
    log(machine_info())
    log(
        f"{args.steps} steps per member, {args.seeds} search seeds; test loss of the member "
        "each method picks by validation loss"
    )
    groups = all_problems()
    wanted = args.problems.split(",")
    for group, problems in groups.items():
        chosen = {p: b for p, b in problems.items() if group in wanted or p in wanted}
        if not chosen:
            continue
        log(f"\n# {group} problems")
        results = {p: run_problem(p, b(args.steps), args.steps, args.seeds, log)
                   for p, b in chosen.items()}  # fmt: skip
        summary(group, results, log)


if __name__ == "__main__":
    main()
