"""Plants known bugs one at a time in a copy of the repository and counts the tests they fail.

Usage (from the repository root, with the test environment's Python)::

    python tests/mutation/run.py                   # every mutation
    python tests/mutation/run.py --only plateau-cooldown-off --only valley-off-by-one
    python tests/mutation/run.py --area engine     # the mutations of one area
    python tests/mutation/run.py --list            # ids, areas and files, nothing run
    python tests/mutation/run.py --baseline        # also run each test selection unmutated
    python tests/mutation/run.py --maxfail 2       # stop each run at 2 failures (faster)

Each mutation is ``(id, area, file, exact old text, new text, tests to run)``. The
repository (tracked files and untracked ones git does not ignore, so uncommitted
work counts) is copied to a temporary directory once; for each mutation the old
text is replaced by the new one there, the given tests run with
``PYTHONPATH=<copy>`` (the copy's ``lrjax`` wins over any installed one) and
``-q -p no:cacheprovider``, and the file is restored. The old text must occur
exactly once in the file: if it does not, the list is out of date with the code
and the script stops with an error before running anything.

The report is a Markdown table: mutation, tests failed, caught (yes when at
least one test failed), and whether it meets the issue's bar of two failing
tests. The exit status is 1 if any mutation run fails that bar, 2 on a usage or
sync error. Not collected by pytest (the file is not named ``test_*.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Tests a mutation must fail at least this many of (issue 13).
BAR = 2


@dataclasses.dataclass(frozen=True)
class Mutation:
    id: str
    area: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    why: str


MUTATIONS = [
    # ------------------------------------------------------------------ schedules
    Mutation(
        "cosine-restarts-overflow-guard-off",
        "schedules",
        "lrjax/schedules/_cosine.py",
        "grown = jnp.where(length > big // mult, big, length * mult)",
        "grown = length * mult",
        (
            "tests/schedules/test_properties.py",
            "-k",
            "cosine_restarts or scale",
            "tests/test_extreme_values.py",
        ),
        "cycle lengths overflow int32 for period_mult >= 2 near 2**31",
    ),
    Mutation(
        "cosine-restarts-saturated-length",
        "schedules",
        "lrjax/schedules/_cosine.py",
        "frac = pos / jnp.where(saturated, true_length, as_float(length))",
        "frac = pos / as_float(length)",
        ("tests/schedules/test_properties.py", "-k", "cosine_restarts or scale"),
        "a cycle longer than 2**31 - 1 uses the saturated length",
    ),
    Mutation(
        "multistep-old-value-at-milestone",
        "schedules",
        "lrjax/schedules/_piecewise.py",
        "passed = jnp.sum(t[..., None] >= m, axis=-1)",
        "passed = jnp.sum(t[..., None] > m, axis=-1)",
        (
            "tests/schedules/test_properties.py",
            "-k",
            "multistep",
            "tests/schedules/test_oracle_torch.py",
        ),
        "torch's MultiStepLR applies the new value at the milestone",
    ),
    Mutation(
        "piecewise-old-boundary-rule-flipped",
        "schedules",
        "lrjax/schedules/_piecewise.py",
        "idx = jnp.sum(t[..., None] > b, axis=-1)",
        "idx = jnp.sum(t[..., None] >= b, axis=-1)",
        (
            "tests/schedules/test_properties.py",
            "-k",
            "piecewise",
            "tests/schedules/test_oracle_keras.py",
        ),
        'at_boundary="old" takes the new value one step early',
    ),
    Mutation(
        "cyclic-period-twice-up",
        "schedules",
        "lrjax/schedules/_cyclic.py",
        "total = up + down",
        "total = up + up",
        ("tests/schedules/test_properties.py", "-k", "cyclic or add"),
        "the cycle is up + down steps, not 2 * up",
    ),
    Mutation(
        "polynomial-cycle-ceil-is-floor-plus-one",
        "schedules",
        "lrjax/schedules/_decay.py",
        "mult = jnp.maximum(q + (q * steps < tc).astype(q.dtype), 1)",
        "mult = jnp.maximum(q + 1, 1)",
        (
            "tests/schedules/test_properties.py",
            "-k",
            "polynomial",
            "tests/schedules/test_oracle_keras.py",
        ),
        "ceil(t / steps) at an exact multiple of steps",
    ),
    Mutation(
        "linear-offset-in-float32",
        "schedules",
        "lrjax/schedules/_decay.py",
        "frac = jnp.clip(step_offset(t, tf, self.transition_begin) / steps, 0.0, 1.0)",
        "frac = jnp.clip((tf - as_float(as_int(self.transition_begin))) / steps, 0.0, 1.0)",
        ("tests/schedules/test_properties.py", "-k", "linear or join or add"),
        "a transition_begin near 2**31 rounded to float32's 128-step grid",
    ),
    # ----------------------------------------------------------------- transforms
    Mutation(
        "plateau-cooldown-off",
        "transforms",
        "lrjax/transforms/_plateau.py",
        "cooldown_counter = jnp.where(reduce, cooldown, cooldown_counter)",
        "cooldown_counter = jnp.where(reduce, 0, cooldown_counter)",
        ("tests/transforms/test_plateau.py",),
        "no cooldown after a reduction",
    ),
    Mutation(
        "plateau-patience-off-by-one",
        "transforms",
        "lrjax/transforms/_plateau.py",
        "reduce = num_bad > patience",
        "reduce = num_bad >= patience",
        ("tests/transforms/test_plateau.py",),
        "the rate drops on the patience-th bad check instead of the patience + 1-th",
    ),
    Mutation(
        "plateau-eps-ignored",
        "transforms",
        "lrjax/transforms/_plateau.py",
        "apply = reduce & (s.scale - target > eps)",
        "apply = reduce",
        ("tests/transforms/test_plateau.py",),
        "torch skips a reduction smaller than eps",
    ),
    Mutation(
        "plateau-increase-patience-off-by-one",
        "transforms",
        "lrjax/transforms/_plateau.py",
        "grow = reduced & (num_good >= increase_patience)",
        "grow = reduced & (num_good > increase_patience)",
        ("tests/transforms/test_plateau.py", "-k", "increase"),
        "the rate rises again one improving check late",
    ),
    # ------------------------------------------------------------------ callbacks
    Mutation(
        "early-stopping-tie-counts-as-improvement",
        "callbacks",
        "lrjax/callbacks.py",
        "return value + delta < reference",
        "return value + delta <= reference",
        ("tests/test_callbacks.py",),
        "Keras: a value equal to best - min_delta is not an improvement",
    ),
    Mutation(
        "early-stopping-patience-off-by-one",
        "callbacks",
        "lrjax/callbacks.py",
        "stop = ~better & (wait >= patience) & (state.step > 0)",
        "stop = ~better & (wait > patience) & (state.step > 0)",
        ("tests/test_callbacks.py",),
        "stops one check late",
    ),
    # ------------------------------------------------- issue 22: negatives, restores
    Mutation(
        "plateau-negative-best-torch-literal",
        "transforms",
        "lrjax/transforms/_plateau.py",
        "ref = jnp.where(best >= 0, pos, neg)",
        "ref = pos",
        ("tests/transforms/test_plateau.py",),
        "torch's best * (1 - threshold) on a negative best: a flat negative loss never cuts",
    ),
    Mutation(
        "bold-driver-compares-magnitudes",
        "transforms",
        "lrjax/transforms/_bold_driver.py",
        "grow = ~first & finite & (v < s.previous)",
        "grow = ~first & finite & (jnp.abs(v) < jnp.abs(s.previous))",
        ("tests/transforms/test_bold_driver.py",),
        "a falling negative loss (growing magnitude) is not an improvement",
    ),
    Mutation(
        "keep-best-before-monitoring",
        "callbacks",
        "lrjax/callbacks.py",
        "new_best = state.has_best & (state.best_step == state.step - 1)",
        "new_best = state.best_step == state.step - 1",
        ("tests/test_callbacks.py", "-k", "keep_best"),
        "before start_from_step, keep_best hands back update 0's parameters",
    ),
    Mutation(
        "readout-plain-dict-scale-ignored",
        "transforms",
        "lrjax/transforms/_readout.py",
        'scales.append(_Found(scope, f"{where}/scale", node["scale"]))',
        'scales.append(_Found(scope, f"{where}/scale", 1.0))',
        ("tests/transforms/test_readout.py",),
        "a state restored without a target reads as base_lr: the plateau's cut is lost",
    ),
    Mutation(
        "readout-plain-dict-hyperparams-ignored",
        "transforms",
        "lrjax/transforms/_readout.py",
        'values.append(_Found(scope, f"{where}/hyperparams/{name}", found))',
        "pass",
        ("tests/transforms/test_readout.py",),
        "injected rates of a state restored without a target are not found",
    ),
    # ------------------------------------------ issue 22: fractional schedule steps
    Mutation(
        "cyclic-flat-between-integer-steps",
        "schedules",
        "lrjax/schedules/_cyclic.py",
        "pos = as_float(t0 - c * total) + frac",
        "pos = as_float(t0 - c * total)",
        ("tests/schedules/test_oracle_closed_form.py", "-k", "between_integer"),
        "cyclic holds s(k) on [k, k + 1)",
    ),
    Mutation(
        "one-cycle-floors-float-steps",
        "schedules",
        "lrjax/schedules/_cyclic.py",
        "tf = jnp.maximum(tf, 0.0)",
        "tf = jnp.maximum(jnp.floor(tf), 0.0)",
        ("tests/schedules/test_oracle_closed_form.py", "-k", "between_integer"),
        "one_cycle / one_cycle_momentum hold s(k) on [k, k + 1)",
    ),
    Mutation(
        "cosine-restarts-flat-between-integer-steps",
        "schedules",
        "lrjax/schedules/_cosine.py",
        "pos = as_float(t - start) + jnp.clip(tf - jnp.floor(tf), 0.0, 1.0)",
        "pos = as_float(t - start)",
        ("tests/schedules/test_oracle_closed_form.py", "-k", "between_integer"),
        "cosine_restarts holds s(k) on [k, k + 1)",
    ),
    Mutation(
        "flat-cos-floors-float-steps",
        "schedules",
        "lrjax/schedules/_cosine.py",
        "pos = jnp.clip(tf / total, 0.0, 1.0)",
        "pos = jnp.clip(jnp.floor(tf) / total, 0.0, 1.0)",
        ("tests/schedules/test_oracle_closed_form.py", "-k", "between_integer"),
        "flat_cos holds s(k) on [k, k + 1)",
    ),
    # ---------------------------------------------------------------- suggestions
    Mutation(
        "valley-off-by-one",
        "suggest",
        "lrjax/_results/_suggest.py",
        "start = end - longest",
        "start = end - longest + 1",
        ("tests/range_test/test_suggest.py",),
        "fastai's valley starts one point before the run's first decrease",
    ),
    # --------------------------------------------------------------------- engine
    Mutation(
        "engine-negative-best-rule-off",
        "engine",
        "lrjax/_engine/_kernel.py",
        "smooth - best > (factor - 1) * -best",
        "jnp.zeros((), bool)",
        ("tests/range_test", "tests/test_sweep.py"),
        "a copy whose loss rises from a negative best never diverges",
    ),
    Mutation(
        "engine-freeze-removed",
        "engine",
        "lrjax/_engine/_kernel.py",
        "new = _keep_if(stopped, new, c)._replace(stopped=stopped, stop_step=new.stop_step)",
        "new = new._replace(stopped=stopped, stop_step=new.stop_step)",
        ("tests/range_test", "tests/test_sweep.py"),
        "a diverged copy keeps training (its parameters keep changing)",
    ),
    Mutation(
        "sweep-grid-order-flipped",
        "engine",
        "lrjax/_sweep.py",
        'mesh = np.meshgrid(*(axes[n] for n in names), indexing="ij")',
        'mesh = np.meshgrid(*(axes[n] for n in names), indexing="xy")',
        (
            "tests/test_sweep.py",
            "tests/test_examples.py::test_vectorized_sweep",
            "tests/range_test/test_engine_rules.py",
        ),
        "the grid is flattened in the wrong order",
    ),
    Mutation(
        "engine-nan-masking-off",
        "engine",
        "lrjax/_engine/_kernel.py",
        "jnp.where(c.stopped, nan, loss),",
        "loss,",
        ("tests/range_test",),
        "losses after a copy stopped are reported instead of NaN",
    ),
    Mutation(
        "engine-padding-steps-train",
        "engine",
        "lrjax/_engine/_kernel.py",
        "new = _keep_if(t >= spec.num_steps, new, c)  # padding steps change nothing",
        "pass",
        ("tests/range_test",),
        "the padded steps of a last partial block keep training",
    ),
    Mutation(
        "engine-eval-after-stop-not-nan",
        "engine",
        "lrjax/_engine/_kernel.py",
        "return jnp.where(c.stopped, jnp.nan, score)",
        "return score",
        ("tests/range_test",),
        "a diverged copy gets a validation score",
    ),
    Mutation(
        "engine-one-random-stream-for-all-copies",
        "engine",
        "lrjax/_engine/_kernel.py",
        "jax.random.key_data(jax.random.fold_in(base, i))",
        "jax.random.key_data(jax.random.fold_in(base, 0 * i))",
        ("tests/range_test",),
        "every copy draws the same dropout masks",
    ),
    Mutation(
        "engine-step-key-not-folded",
        "engine",
        "lrjax/_engine/_kernel.py",
        "spec.behaviour.loss(p, c.state, batch, jax.random.fold_in(key, t))",
        "spec.behaviour.loss(p, c.state, batch, jax.random.fold_in(key, 0))",
        ("tests/range_test/test_models.py", "-k", "linen_dropout"),
        "every step of a copy draws the same dropout mask (not fold_in(copy_key, t))",
    ),
    Mutation(
        "engine-stream-t0-counts-calls",
        "engine",
        "lrjax/_engine/_strategies/_scan.py",
        "t0 += plan.block * plan.per_call",
        "t0 += plan.per_call",
        ("tests/range_test/test_parallel.py", "-k", "several_blocks"),
        "a streamed run's later calls start at the wrong step (steps 32 and later)",
    ),
    # ------------------------------------------ issue 27: data users bring, closures
    Mutation(
        "data-stream-no-epochs",
        "data",
        "lrjax/_engine/_data.py",
        "self.reiterable = epochs and not isinstance(batches, Iterator)",
        "self.reiterable = False",
        ("tests/test_loaders.py",),
        "a re-iterable loader shorter than the run is not read again (no epochs)",
    ),
    Mutation(
        "data-conversion-drops-detach",
        "data",
        "lrjax/_engine/_data.py",
        "x = x.detach().cpu()",
        "x = x.cpu()",
        ("tests/test_loaders.py", "-k", "torch"),
        "torch tensors that require grad cannot be converted",
    ),
    Mutation(
        "data-dtypes-not-canonical",
        "data",
        "lrjax/_engine/_data.py",
        "dtype = jax.dtypes.canonicalize_dtype(jnp.result_type(arr))",
        "dtype = arr.dtype",
        ("tests/test_loaders.py",),
        "int64 / float64 batches kept as they are: mixed with 32-bit ones, refused",
    ),
    Mutation(
        "closure-check-off",
        "data",
        "lrjax/_engine/_prepare.py",
        "_check_uses_params(jaxpr, len(jax.tree.leaves(params)), form)",
        "pass",
        ("tests/test_loss_closures.py", "-k", "refused"),
        "a loss that closes over the model trains nothing, silently",
    ),
    Mutation(
        "structure-key-ignores-closures",
        "data",
        "lrjax/_engine/_models/_common.py",
        "cells = tuple(_cell_key(c, key) for c in x.__closure__ or ())",
        "cells = ()",
        ("tests/test_loss_closures.py", "-k", "structure"),
        "a model closing over another value reuses the first model's compiled program",
    ),
    Mutation(
        "strict-key-lists-by-contents",
        "data",
        "lrjax/_engine/_models/_common.py",
        "if isinstance(x, tuple) or (isinstance(x, list) and not strict):",
        "if isinstance(x, (tuple, list)):",
        (
            "tests/range_test/test_strategies.py",
            "tests/test_tune.py",
            "-k",
            "closing_over_a_list or members_computed_per_round",
        ),
        "a loss closing over a list reuses the program of another loss's list",
    ),
    # ----------------------------------------------------------------------- tune
    Mutation(
        "tune-probe-not-annealed",
        "tune",
        "lrjax/_search/_probe.py",
        "scale = jnp.clip((end - step).astype(dtype) / (self.steps + 1), 0, 1)",
        "scale = jnp.ones((), dtype)",
        ("tests/test_tune.py",),
        "the cooldown probe trains at the full rate instead of annealing it",
    ),
    Mutation(
        "tune-halving-keeps-the-worse-half",
        "tune",
        "lrjax/_search/_halving.py",
        "order = jnp.lexsort((jnp.where(now.active, rank_scores(now.score), jnp.inf), inactive))",
        "order = jnp.lexsort((jnp.where(now.active, -rank_scores(now.score), jnp.inf), inactive))",
        ("tests/test_tune.py",),
        "successive halving stops the better half",
    ),
    Mutation(
        "tune-halving-gathers-the-first-slots",
        "tune",
        "lrjax/_search/_round.py",
        "index = jnp.argsort(~pop.active, stable=True)[:width]",
        "index = jnp.arange(width)",
        ("tests/test_tune.py",),
        "halving trains the first slots, not the members still training",
    ),
    Mutation(
        "tune-perturb-not-clipped",
        "tune",
        "lrjax/_search/_space.py",
        "moved = jnp.clip(gene * jnp.where(up, hi_f, lo_f), bound[0], bound[1])",
        "moved = gene * jnp.where(up, hi_f, lo_f)",
        ("tests/test_tune.py", "-k", "exploit or brute_force"),
        "a perturbed number leaves [low, high] (x1.25 near high, x0.8 near low)",
    ),
    Mutation(
        "tune-reseed-same-every-round",
        "tune",
        "lrjax/_search/_round.py",
        "key = jax.random.fold_in(jax.random.wrap_key_data(key), r)",
        "key = jax.random.fold_in(jax.random.wrap_key_data(key), 0)",
        ("tests/test_tune.py", "-k", "nnx"),
        "every round reuses round 0's Dropout streams (not fold_in(member_key, r))",
    ),
    Mutation(
        "tune-rate-test-low-end-not-scaled",
        "tune",
        "lrjax/_search/_rate.py",
        "lo = scale_to_run(rates[best], test_steps, num_steps) / LOW_MARGIN",
        "lo = float(rates[best]) / LOW_MARGIN",
        (
            "tests/test_tune.py",
            "-k",
            "brute_force or narrow",
            "--doctest-modules",
            "lrjax/_search/_rate.py",
        ),
        "the narrowed range's low end is not scaled for the run's length",
    ),
    Mutation(
        "tune-rate-test-high-end-at-failure",
        "tune",
        "lrjax/_search/_rate.py",
        "hi = math.sqrt(first * last_good)",
        "hi = first",
        (
            "tests/test_tune.py",
            "-k",
            "brute_force or narrow",
            "--doctest-modules",
            "lrjax/_search/_rate.py",
        ),
        "the narrowed range reaches the first failed rate instead of stopping below it",
    ),
    Mutation(
        "tune-rate-test-ignores-lost-progress",
        "tune",
        "lrjax/_search/_rate.py",
        "failed = bad | (np.isfinite(baseline) & ~(scores <= limit))",
        "failed = bad",
        (
            "tests/test_tune.py",
            "-k",
            "brute_force or narrow",
            "--doctest-modules",
            "lrjax/_search/_rate.py",
        ),
        "only divergence ends the range, not a rate that lost most of the best's progress",
    ),
    Mutation(
        "tune-initial-population-not-stratified",
        "tune",
        "lrjax/_search/_space.py",
        "return (rank.astype(draws.sample.dtype) + draws.sample) / P",
        "return draws.sample",
        (
            "tests/test_tune.py",
            "-k",
            "brute_force",
            "--doctest-modules",
            "lrjax/_search/_space.py",
        ),
        "the initial population is drawn plainly, not one member per stratum",
    ),
    Mutation(
        "tune-stream-prefix-not-replayed",
        "tune",
        "lrjax/_engine/_data.py",
        "part = self._cache[start : start + want]",
        "part = []",
        ("tests/test_tune.py", "-k", "streamed"),
        "after the rate test read a stream's first batches, the search skips them",
    ),
]


def check_in_sync(mutations: list[Mutation], root: Path) -> list[str]:
    """Problems with the list: an old text that is missing or not unique."""
    problems = []
    ids = [m.id for m in mutations]
    for dup in {i for i in ids if ids.count(i) > 1}:
        problems.append(f"{dup}: duplicate id")
    for m in mutations:
        path = root / m.file
        if not path.is_file():
            problems.append(f"{m.id}: file {m.file} not found")
            continue
        n = path.read_text().count(m.old)
        if n != 1:
            problems.append(
                f"{m.id}: old text found {n} times in {m.file} (must be once): {m.old!r}"
            )
    return problems


def copy_repo(dest: Path) -> None:
    """Tracked files and untracked files git does not ignore, into ``dest``."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in files:
        if not raw:
            continue
        rel = Path(os.fsdecode(raw))
        src = ROOT / rel
        if not src.is_file():  # deleted in the work tree but still tracked
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


_SUMMARY = re.compile(r"(\d+) (failed|passed|errors?|skipped|deselected)")


def run_tests(
    copy: Path, tests: tuple[str, ...], maxfail: int | None
) -> tuple[int, int, str, list[str]]:
    """Runs pytest in ``copy``: (failed + errors, passed, the summary line, failed test ids)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(copy),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HYPOTHESIS_PROFILE": "lrjax-mutation",  # tests/conftest.py: derandomized, no shrinking
    }
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *tests]
    if maxfail:
        cmd.append(f"--maxfail={maxfail}")
    proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"pytest exited {proc.returncode} for {tests}:\n{out[-3000:]}")
    ids = [
        ln.split()[1]
        for ln in out.splitlines()
        if ln.startswith(("FAILED ", "ERROR ")) and " " in ln
    ]
    last = out.strip().splitlines()[-1] if out.strip() else ""
    passed = sum(int(n) for n, kind in _SUMMARY.findall(last) if kind == "passed")
    return len(ids), passed, last, ids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=[], metavar="ID", help="run this id")
    ap.add_argument("--area", action="append", default=[], help="run the mutations of an area")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--baseline", action="store_true", help="run each selection unmutated too")
    ap.add_argument("--maxfail", type=int, default=None, help="stop each run after N failures")
    args = ap.parse_args(argv)

    problems = check_in_sync(MUTATIONS, ROOT)
    if problems:
        print("mutation list out of sync with the code:", *problems, sep="\n  ", file=sys.stderr)
        return 2
    chosen = MUTATIONS
    known = {m.id for m in MUTATIONS}
    unknown = [i for i in args.only if i not in known]
    if unknown:
        print(f"unknown ids {unknown}; known: {sorted(known)}", file=sys.stderr)
        return 2
    if args.only:
        chosen = [m for m in chosen if m.id in args.only]
    if args.area:
        chosen = [m for m in chosen if m.area in args.area]
    if args.list:
        for m in chosen:
            print(f"{m.id:45s} {m.area:10s} {m.file}  ({m.why})")
        return 0

    print(
        f"# mutation run {time.strftime('%Y-%m-%d %H:%M %Z')} on {platform.node() or '?'}: "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="lrjax-mutation-") as tmp:
        copy = Path(tmp) / "repo"
        copy_repo(copy)
        if args.baseline:
            for tests in dict.fromkeys(m.tests for m in chosen):
                failed, passed, last, _ = run_tests(copy, tests, None)
                print(f"baseline {' '.join(tests)}: {last}", flush=True)
                if failed:
                    print("the unmutated code fails these tests: fix that first", file=sys.stderr)
                    return 2
        for m in chosen:
            path = copy / m.file
            original = path.read_text()
            path.write_text(original.replace(m.old, m.new, 1))
            t0 = time.perf_counter()
            try:
                failed, passed, last, ids = run_tests(copy, m.tests, args.maxfail)
            finally:
                path.write_text(original)
            seconds = time.perf_counter() - t0
            rows.append((m, failed, passed, seconds))
            print(f"{m.id}: {failed} failed ({last}) in {seconds:.0f} s", flush=True)
            for test_id in ids:
                print(f"    {test_id}", flush=True)

    capped = f" (each run stopped at {args.maxfail} failures)" if args.maxfail else ""
    print(f"\n| mutation | area | tests run | tests failed{capped} | caught | >= {BAR} |")
    print("|---|---|---|---|---|---|")
    for m, failed, passed, _ in rows:
        print(
            f"| `{m.id}` | {m.area} | {failed + passed} | {failed} | "
            f"{'yes' if failed else 'NO'} | {'yes' if failed >= BAR else 'NO'} |"
        )
    return 0 if all(failed >= BAR for _, failed, _, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
