"""How good is ``lrjax.tune``? PBT and halving against random search and a grid, one run.

Four small problems, each with a held-out validation split (what every method
ranks by) and a separate test split (what the table reports):

- ``digits``: the digits MLP of ``lrjax.data`` (64-64-10), AdamW with a
  one-cycle schedule; tuned: ``max_value`` (log 1e-4..1), ``pct_start``
  (0.1..0.5), ``weight_decay`` (log 1e-5..1e-1).
- ``regression``: a tanh MLP (4-64-1) on ``sin(2 x0) + 0.5 x1 x2`` (plus noise
  of standard deviation 0.1), SGD with
  momentum and a one-cycle schedule; tuned: ``max_value`` (log 1e-4..3),
  ``momentum`` (0.5..0.99), ``pct_start`` (0.1..0.5).
- ``cnn``: the NNX CNN of ``suggestion_quality.py`` (two 3x3 convolutions with
  BatchNorm, Dropout 0.2, 2686 parameters) on the digits images (1000 / 200 /
  400 train / validation / test, batch 32), SGD with Nesterov momentum 0.9,
  weight decay added to the gradient and a one-cycle schedule; tuned:
  ``max_value`` (log 1e-3..3), ``pct_start`` (0.1..0.5), ``weight_decay``
  (log 1e-5..1e-2). Validation and test losses in eval mode (BatchNorm on its
  running statistics, no Dropout).
- ``transformer``: the character-level transformer of ``suggestion_quality.py``
  (one pre-LN block, width 16, 2 heads, context 16, 4432 parameters, a plain
  pytree) on Python standard-library source (batches of 8 windows; 32 windows
  to validate, 64 to test), AdamW with a one-cycle schedule; tuned:
  ``max_value`` (log 1e-4..0.3), ``pct_start`` (0.1..0.5), ``weight_decay``
  (log 1e-4..0.3).

Methods, all at the same number of training steps per member (``--steps``):

- ``pbt`` / ``halving``: ``lrjax.tune``; PBT with 16 members and 8 rounds
  (and 4); halving over 5 rounds with 40 members (40 -> 20 -> 10 -> 5 -> 3
  trained: about PBT's compute; the last elimination at 4/5 of the budget)
  and with 16 (half the compute); each with its default cooldown probe
  (a quarter round) and without it (``no probe``);
- ``random x1``: 16 settings drawn from the same space, each trained for all
  steps (the same compute as tune), best by validation loss;
- ``random x4``: 64 settings (4x the compute);
- ``grid``: a dense grid (4 values per dimension, 64 settings, log-spaced on
  log dimensions), 4x the compute;
- ``optuna``: Optuna's TPE sampler with its median pruner (reports after each
  of the same 8 rounds, pruning from the sixth trial on), trials run as jitted
  ``lax.scan`` chunks from the host (an NNX model split into parameters and
  the rest of its state, trained functionally in train mode), until the same
  number of training steps as tune has been spent (pruned trials free steps
  for more trials); skipped when Optuna is not installed (``pip install optuna``).

The random and grid runs use ``lrjax.sweep`` (``return_params=True``); the
chosen member's parameters are scored on the test split by the loss function.
For the NNX CNN the model state counts too: the BatchNorm statistics of tune's
best member (``result.state``) and of the sweep's best setting
(``result.best_state()``).
Each method runs with ``--seeds`` search seeds (tune's ``key``; the random
draws); the table shows the median test loss over seeds and every method's
excess over ``random x4`` (the per-seed differences: their median, mean and
largest), and the training steps it spent (cooldown probes included) over
random x1's.
Wall time is the median over seeds (the first call of a shape compiles; later
seeds reuse the program, so the median is the warm time for 3 seeds or more).

    python benchmarks/tune_quality.py [--seeds 3] [--steps 240] [--problems cnn,transformer]

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


def tune_steps(method: str, population: int, steps: int, rounds: int, probe: bool = True) -> int:
    """Training steps a search costs, cooldown probes included (as lrjax.tune runs them)."""
    from lrjax._search import default_cooldown, round_widths

    L = steps // rounds
    widths = round_widths(method, population, rounds)
    K = default_cooldown(L) if probe else 0
    return L * sum(widths) + K * sum(widths[:-1])


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
    """``make_optimizer(max_value, pct_start, weight_decay)``: AdamW on a one-cycle schedule."""

    def make(max_value, pct_start, weight_decay):
        sched = lrjax.one_cycle(max_value, steps, pct_start=pct_start)
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
        "max_value": ("log", 1e-4, 1.0),
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

    def make(max_value, momentum, pct_start):
        return optax.sgd(lrjax.one_cycle(max_value, steps, pct_start=pct_start), momentum=momentum)

    space = {
        "max_value": ("log", 1e-4, 3.0),
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
    def make(max_value, pct_start, weight_decay):
        sched = lrjax.one_cycle(max_value, steps, pct_start=pct_start)
        return optax.chain(
            optax.add_decayed_weights(weight_decay),
            optax.sgd(sched, momentum=0.9, nesterov=True),
        )

    space = {
        "max_value": ("log", 1e-3, 3.0),
        "pct_start": (0.1, 0.5),
        "weight_decay": ("log", 1e-5, 1e-2),
    }
    return from_suite(cnn(), steps, make, space)


def transformer_problem(steps: int) -> Setup:
    make = adamw_one_cycle(steps)
    space = {
        "max_value": ("log", 1e-4, 0.3),
        "pct_start": (0.1, 0.5),
        "weight_decay": ("log", 1e-4, 0.3),
    }
    return from_suite(transformer(), steps, make, space)


PROBLEMS = {
    "digits": digits_problem,
    "regression": regression_problem,
    "cnn": cnn_problem,
    "transformer": transformer_problem,
}


def random_grid(space, n, seed):
    r = np.random.default_rng(seed)
    out = {}
    for name, dim in space.items():
        if dim[0] == "log":
            out[name] = np.exp(r.uniform(np.log(dim[1]), np.log(dim[2]), n))
        else:
            out[name] = r.uniform(dim[0], dim[1], n)
    return out


def dense_grid(space, per_dim=4):
    axes = []
    for dim in space.values():
        if dim[0] == "log":
            axes.append(np.geomspace(dim[1], dim[2], per_dim))
        else:
            axes.append(np.linspace(dim[0], dim[1], per_dim))
    rows = list(itertools.product(*axes))
    return {name: np.array([r[i] for r in rows]) for i, name in enumerate(space)}


def optuna_search(prob: Setup, steps, seed):
    """TPE + median pruner at tune's compute: ``(best params, their model state, trials run)``.

    Trains functionally (``suggestion_quality.functional``): a plain pytree as
    it is, an NNX model split into its parameters and the rest of its state
    (BatchNorm statistics, Dropout's RNG counters), carried in train mode.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    L = steps // ROUNDS
    budget = POP * steps
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=240)
    ap.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated subset")
    args = ap.parse_args()
    print(machine_info())
    print(
        f"population {POP}, {args.steps} steps per member, "
        f"{args.seeds} search seeds; test loss of the member each method picks by validation loss"
    )
    problems = {p: PROBLEMS[p] for p in args.problems.split(",")}
    trials: dict[str, list[int]] = {p: [] for p in problems}
    for pname, build in problems.items():
        prob = build(args.steps)
        loss_fn, params, batches, val, test, make, space = prob[:7]
        # (params, model state, batch) -> loss in eval mode; model state () for a pytree
        test_loss = jax.jit(functional(prob, params)[3])

        def run_tune(method, seed, rounds=ROUNDS, cooldown=None, population=POP):
            res = lrjax.tune(
                loss_fn, params, batches, make, space, population=population,
                num_steps=args.steps, rounds=rounds, method=method, val_batches=val,
                key=jax.random.PRNGKey(seed), cooldown_steps=cooldown, progress=False,
            )  # fmt: skip
            return float(test_loss(res.params, res.state, test))

        def run_sweep(grid):
            res = lrjax.sweep(
                loss_fn, params, batches, make, grid, combine="zip", val_batches=val,
                return_params=True, progress=False,
            )  # fmt: skip
            return float(test_loss(res.best_params(), res.best_state(), test))

        methods = {
            "pbt, 8 rounds": lambda s: run_tune("pbt", s),
            "pbt, 4 rounds": lambda s: run_tune("pbt", s, rounds=4),
            f"halving, {HALVING_POP} members, 5 rounds": lambda s: run_tune(
                "halving", s, rounds=5, population=HALVING_POP
            ),
            "pbt, 8 rounds, no probe": lambda s: run_tune("pbt", s, cooldown=0),
            "pbt, 4 rounds, no probe": lambda s: run_tune("pbt", s, rounds=4, cooldown=0),
            f"halving, {HALVING_POP}, 5 rounds, no probe": lambda s: run_tune(
                "halving", s, rounds=5, cooldown=0, population=HALVING_POP
            ),
            "halving, 16, 5 rounds": lambda s: run_tune("halving", s, rounds=5),
            "random x1": lambda s: run_sweep(random_grid(space, POP, s)),
            "random x4": lambda s: run_sweep(random_grid(space, 4 * POP, 1000 + s)),
            "grid (4^3) x4": lambda s: run_sweep(dense_grid(space)),
        }
        unit = POP * args.steps  # random x1's training steps
        compute = {
            "pbt, 8 rounds": tune_steps("pbt", POP, args.steps, ROUNDS),
            "pbt, 4 rounds": tune_steps("pbt", POP, args.steps, 4),
            f"halving, {HALVING_POP} members, 5 rounds": tune_steps(
                "halving", HALVING_POP, args.steps, 5
            ),
            "pbt, 8 rounds, no probe": tune_steps("pbt", POP, args.steps, ROUNDS, probe=False),
            "pbt, 4 rounds, no probe": tune_steps("pbt", POP, args.steps, 4, probe=False),
            f"halving, {HALVING_POP}, 5 rounds, no probe": tune_steps(
                "halving", HALVING_POP, args.steps, 5, probe=False
            ),
            "halving, 16, 5 rounds": tune_steps("halving", POP, args.steps, 5),
            "random x1": unit,
            "random x4": 4 * unit,
            "grid (4^3) x4": 4 * unit,
            "optuna TPE+median x1": unit,
        }
        try:
            import optuna  # noqa: F401

            def run_optuna(seed):
                p, ms, n = optuna_search(prob, args.steps, seed)
                trials[pname].append(n)
                return float(test_loss(p, ms, test))

            methods["optuna TPE+median x1"] = run_optuna
        except ImportError:
            print("(optuna not installed: no optuna row)")
        losses: dict[str, list[float]] = {m: [] for m in methods}
        walls: dict[str, list[float]] = {m: [] for m in methods}
        for seed in range(args.seeds):
            for m, fn in methods.items():  # interleaved: load changes hit every method
                t0 = time.perf_counter()
                losses[m].append(fn(seed))
                walls[m].append(time.perf_counter() - t0)
        ref = losses["random x4"]
        rows = []
        for m in methods:
            diff = [a - b for a, b in zip(losses[m], ref)]
            rows.append(
                [
                    m,
                    f"{statistics.median(losses[m]):.4f}",
                    " ".join(f"{v:.4f}" for v in losses[m]),
                    f"{statistics.median(diff):+.4f}",
                    f"{statistics.mean(diff):+.4f}",
                    f"{max(diff):+.4f}",
                    f"{compute[m] / unit:.2f}",
                    f"{statistics.median(walls[m]):.2f}",
                ]
            )
        print()
        print(f"### {pname}")
        print(
            table(
                rows,
                [
                    "method",
                    "test loss (median)",
                    "per seed",
                    "vs random x4: median",
                    "mean",
                    "worst seed",
                    "steps / random x1",
                    "wall s (median)",
                ],
            )
        )
        if trials[pname]:
            print(f"optuna trials per search (pruned ones included): {trials[pname]}")


if __name__ == "__main__":
    main()
