"""Which parts of ``lrjax.tune``'s default search earn their place? One change at a time.

On the six search problems of ``tune_problems.py`` (never the held-out ones),
``lrjax.tune`` with its defaults (successive halving, 40 members over 5
rounds, the cooldown probe, the rate test on ``lr``, a Latin-hypercube start)
against the same search with one part changed:

- ``plain start``: the initial population drawn plainly (independent uniform
  draws) instead of one member per stratum of each range;
- ``low margin 1`` / ``low margin 10``: the narrowed range's low end at the
  best tested rate scaled for the run's length, divided by 1 or 10 instead of 3;
- ``fail at 1/4`` / ``fail at 3/4``: a rate above the best fails the test when
  it loses more than a quarter / three quarters of the best's progress
  instead of half;
- ``test 1/16`` / ``test 1/4``: the rate test trains a sixteenth / a quarter
  of the run instead of an eighth (fewer / more steps in all).

The constants are module attributes of ``lrjax._search``; the start is traced
into the compiled search, so its variant clears JAX's caches before and after.
Each row: the median test loss over ``--seeds`` search seeds, the median and
worst per-seed difference to the default (negative: the change helps), the
seeds it wins, and its steps relative to the default.

    python benchmarks/tune_ablation.py [--seeds 10] [--steps 240]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from collections.abc import Iterator

import jax
from _common import machine_info, table
from suggestion_quality import functional
from tune_problems import SEARCH_PROBLEMS

import lrjax
from lrjax._search import _rate, _space


@contextlib.contextmanager
def patched(module, name: str, value) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


@contextlib.contextmanager
def plain_start() -> Iterator[None]:
    jax.clear_caches()  # the compiled search has the stratified start traced in
    with patched(_space, "stratified", lambda draws: draws.sample):
        yield
    jax.clear_caches()


VARIANTS = {
    "default": (contextlib.nullcontext, None),
    "plain start": (plain_start, None),
    "low margin 1": (lambda: patched(_rate, "LOW_MARGIN", 1.0), None),
    "low margin 10": (lambda: patched(_rate, "LOW_MARGIN", 10.0), None),
    "fail at 1/4": (lambda: patched(_rate, "FAILED_FRACTION", 0.25), None),
    "fail at 3/4": (lambda: patched(_rate, "FAILED_FRACTION", 0.75), None),
    "test 1/16": (contextlib.nullcontext, 16),
    "test 1/4": (contextlib.nullcontext, 4),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=240)
    args = ap.parse_args()
    log = lambda *a: print(*a, flush=True)
    log(machine_info())
    log(f"{args.steps} steps per member, {args.seeds} search seeds; test loss of the best member")
    summary = []
    for pname, build in SEARCH_PROBLEMS.items():
        prob = build(args.steps)
        test_loss = jax.jit(functional(prob, prob.params)[3])
        losses, steps = {}, {}
        for variant, (context, fraction) in VARIANTS.items():
            losses[variant] = []
            test_steps = None if fraction is None else args.steps // fraction
            with context():
                for seed in range(args.seeds):
                    res = lrjax.tune(
                        prob.loss, prob.params, prob.batches, prob.make, prob.space,
                        num_steps=args.steps, val_batches=prob.val, key=jax.random.PRNGKey(seed),
                        progress=False, rate_test_steps=test_steps,
                    )  # fmt: skip
                    losses[variant].append(float(test_loss(res.params, res.state, prob.test)))
                    steps[variant] = res.steps
        rows = []
        for variant in VARIANTS:
            diff = [a - b for a, b in zip(losses[variant], losses["default"])]
            wins = sum(d < 0 for d in diff)
            rows.append(
                [
                    variant,
                    f"{statistics.median(losses[variant]):.4f}",
                    f"{statistics.median(diff):+.4f}",
                    f"{max(diff):+.4f}",
                    f"{wins}/{args.seeds}",
                    f"{steps[variant] / steps['default']:.2f}",
                ]
            )
            summary.append((variant, pname, statistics.median(diff)))
        log()
        log(f"### {pname}")
        header = ["variant", "test loss (median)", "vs default: median", "worst seed",
                  "seeds better", "steps / default"]  # fmt: skip
        log(table(rows, header))
    log()
    log("## Summary: median difference to the default, per problem")
    probs = list(SEARCH_PROBLEMS)
    rows = []
    for variant in VARIANTS:
        cells = [f"{d:+.4f}" for v, _, d in summary if v == variant]
        better = sum(d < 0 for v, _, d in summary if v == variant)
        rows.append([variant, *cells, f"{better}/{len(probs)}"])
    log(table(rows, ["variant", *probs, "problems better"]))


if __name__ == "__main__":
    main()
