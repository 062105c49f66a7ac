"""``lrjax find``: the range test on the embedded digits MLP or ``--data file.npz``."""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lrjax._cli._errors import UsageError, save_figure
from lrjax._results import STATUSES, range_test_figure

OPTIMIZERS = ("adam", "sgd", "momentum", "adamw", "rmsprop", "adabound")
MODES = ("parallel", "ramp")
#: Old spellings of ``--mode``, accepted with one deprecation line on stderr.
OLD_MODES = {"sweep": "ramp"}


def _momentum(lr: Any):
    import optax

    return optax.sgd(lr, momentum=0.9)


def optimizer_by_name(name: str) -> Callable[[Any], Any]:
    """The ``lr -> GradientTransformation`` for an ``--optimizer`` name."""
    import optax

    if name == "adabound":
        try:
            from lrjax.transforms import adabound
        except ImportError:
            raise UsageError("--optimizer adabound is not available in this install") from None
        return adabound
    table = {
        "adam": optax.adam,
        "sgd": optax.sgd,
        "momentum": _momentum,
        "adamw": optax.adamw,
        "rmsprop": optax.rmsprop,
    }
    if name not in table:
        raise UsageError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    return table[name]


def _check_args(args: argparse.Namespace) -> None:
    for flag, value in (
        ("--num-lrs", args.num_lrs),
        ("--steps", args.steps),
        ("--seeds", args.seeds),
    ):
        if value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    for flag, value in (("--min-lr", args.min_lr), ("--max-lr", args.max_lr)):
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"{flag} must be a finite number > 0, got {value}")
    if args.min_lr >= args.max_lr:
        raise UsageError(f"--min-lr must be < --max-lr, got {args.min_lr:g} >= {args.max_lr:g}")
    if args.mode in OLD_MODES:
        new = OLD_MODES[args.mode]
        print(f"--mode {args.mode} is deprecated: use --mode {new}", file=sys.stderr)
        args.mode = new
    if args.mode not in MODES:
        raise UsageError(f"--mode must be {' or '.join(MODES)}, got {args.mode!r}")
    if args.mode == "ramp" and args.seeds != 1:
        raise UsageError("--seeds applies to --mode parallel only")
    if not (math.isfinite(args.val_fraction) and 0 <= args.val_fraction < 1):
        raise UsageError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.optimizer not in OPTIMIZERS:
        raise UsageError(
            f"--optimizer must be one of {', '.join(OPTIMIZERS)}; got {args.optimizer!r}"
        )
    folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(folder):
        raise UsageError(f"--out {args.out!r}: folder {folder!r} does not exist")


def check_out_format(out: str) -> None:
    from lrjax.plotting import image_formats

    try:
        supported = image_formats()
    except ImportError:
        raise UsageError('lrjax find needs matplotlib: pip install "lrjax[demo]"') from None
    ext = os.path.splitext(out)[1].lstrip(".").lower()
    if ext not in supported:
        raise UsageError(
            f"--out {out!r}: unknown image format; use one of .{', .'.join(supported)}"
        )


def _held_out(args: argparse.Namespace, n: int) -> int:
    """How many of ``n`` samples are held out to score on (only parallel runs hold out)."""
    return round(args.val_fraction * n) if args.mode == "parallel" else 0


def _split(X: np.ndarray, y: np.ndarray, n_val: int, seed: int = 0):
    """``(X_train, y_train, X_val, y_val)``: a fixed random ``n_val`` rows held out."""
    order = np.random.default_rng(seed).permutation(X.shape[0])
    val, train = order[:n_val], order[n_val:]
    return X[train], y[train], X[val], y[val]


def load_data(args: argparse.Namespace):
    """``(X, y, name)``: ``--data`` or the embedded digits (a UsageError if neither loads)."""
    from lrjax import data

    if args.data:
        try:
            X, y = data.load_npz(args.data)
        except (OSError, ValueError) as e:
            raise UsageError(f"--data: {e}") from None
        return X, y, os.path.basename(args.data)
    try:
        X, y = data.load_digits()
    except ImportError as e:
        raise UsageError(str(e)) from None
    return X, y, "digits"


def _fmt_loss(x: float) -> str:
    return f"{x:.4f}" if math.isfinite(x) else "-"


def _table_parallel(result) -> list[str]:
    """One row per rate: the training score, the validation loss, status, marks."""
    from lrjax._results import copy_scores
    from lrjax._rules import score_window

    seeds = result.losses.shape[0]
    train, _, _ = copy_scores(result.losses, result.stop_step)
    has_val = result.val_losses is not None
    w = score_window(result.num_steps)
    legend = [f"train: mean training loss, last {w} steps"]
    if has_val:
        legend.append(f"val: validation loss after step {result.num_steps}")
    if seeds > 1:
        legend.append(f"mean ± std over {seeds} seeds")
    lines = ["; ".join(legend)]
    head = f"{'rate':>10}  {'train':>8}"
    head += f"  {'val':>8}" if has_val else ""
    head += f"  {'± std':>8}" if seeds > 1 else ""
    lines += [head + "  status", "-" * (len(head) + 10)]
    try:
        suggested = result.suggest()
    except ValueError:
        suggested = None
    best = result.best_lr
    # mean over seeds; a rate diverged for any seed shows "-" (its val loss is NaN)
    val = np.mean(result.val_losses, axis=0) if has_val else None
    for k, lr in enumerate(result.lrs):
        row = f"{lr:>10.3g}  {_fmt_loss(train[k]):>8}"
        if has_val:
            row += f"  {_fmt_loss(val[k]):>8}"
        if seeds > 1:
            row += f"  {_fmt_loss(result.score_std[k]):>8}"
        row += f"  {result.status[k]}"
        if best is not None and lr == best:
            row += "  <- best " + ("validation" if has_val else "training") + " score"
        lines.append(row)
    if suggested is not None and not np.isin(suggested, result.lrs):
        lines.append(f"{'':>10}  (the suggested {suggested:.3g} lies between two tested rates)")
    return lines


def _table_ramp(result) -> list[str]:
    stop = result.num_steps if result.stop_step < 0 else result.stop_step + 1
    every = max(1, math.ceil(stop / 20))
    head = f"{'step':>5}  {'rate':>10}  {'smoothed':>10}"
    lines = [head + "  status", "-" * (len(head) + 10)]
    shown = sorted(set(range(0, stop, every)) | {stop - 1})
    for i in shown:
        lines.append(
            f"{i:>5}  {result.lrs[i]:>10.3g}  {_fmt_loss(result.smoothed[i]):>10}"
            f"  {result.status[i]}"
        )
    return lines


def timings_requested(args: argparse.Namespace) -> bool:
    """``--timings`` or ``LRJAX_TIMINGS`` set to anything but empty, ``0``, ``false``, ``no``."""
    env = os.environ.get("LRJAX_TIMINGS", "").strip().lower()
    return bool(getattr(args, "timings", False)) or env not in ("", "0", "false", "no")


def run_find(args: argparse.Namespace) -> int:
    """Runs ``lrjax find`` for parsed arguments; returns the exit code.

    Raises:
      UsageError: bad flag values, a missing or malformed data file, or a
        missing optional dependency (printed as one line, exit code 2).
    """
    from lrjax._cli._timings import Phases, watch_compiles

    phases = Phases()
    with watch_compiles() as compiles:
        with phases.phase("imports"):
            _check_args(args)
            check_out_format(args.out)  # imports matplotlib's canvas, which the plot needs
            optimizer = optimizer_by_name(args.optimizer)
        with phases.phase("data"):
            X, y, name = load_data(args)
            params, init_fn, batches, val, sizes = _setup(args, X, y)
        start = time.perf_counter()
        result = _range_test(args, params, init_fn, batches, val, optimizer)
        seconds = time.perf_counter() - start
        _report(args, result, name, X.shape[0], sizes, seconds)
        with phases.phase("plot"):
            save_figure(range_test_figure(result), args.out, dpi=100)
    print(f"wrote {args.out}")
    if timings_requested(args):
        phases.seconds["compile"] = compiles.seconds
        phases.seconds["run"] = max(0.0, seconds - compiles.seconds)
        phases.seconds["plot"] = phases.seconds.pop("plot")  # listed in the order they ran
        print(phases.line(compiles, getattr(result, "strategy", None)), file=sys.stderr)
    return 0


def hold_out(X: np.ndarray, y: np.ndarray, fraction: float):
    """``(X_train, y_train, val_batches)``: a fixed random ``fraction`` of the rows held
    out as equal batches of up to 128 (the tail that does not fit left out), on
    the device; ``val_batches`` is ``None`` for ``fraction == 0``."""
    import jax

    if fraction == 0:
        return X, y, None
    X, y, Xv, yv = _split(X, y, round(fraction * len(X)))
    if len(Xv) == 0 or len(X) == 0:
        raise UsageError(f"--val-fraction {fraction} leaves no data on one side")
    n = -(-len(Xv) // 128)
    size = len(Xv) // n
    val = (Xv[: n * size].reshape(n, size, -1), yv[: n * size].reshape(n, size))
    return X, y, jax.device_put(val)  # device_put: nothing compiled


def _setup(args: argparse.Namespace, X: np.ndarray, y: np.ndarray):
    """``(params, init_fn, batches, val_batches, sizes)`` of the demo MLP, on the
    device, nothing compiled. Parallel runs hold out ``--val-fraction`` of the
    data (as batches of up to 128) to score each rate on."""
    import jax

    from lrjax import data

    sizes = data.mlp_sizes(X, y)
    val = None
    if args.mode == "parallel":
        X, y, val = hold_out(X, y, args.val_fraction)
    if args.seeds > 1:  # one compiled program draws every seed's initialisation
        params, init_fn = None, jax.jit(functools.partial(data.init_mlp, sizes=sizes))
    else:  # NumPy: nothing to compile
        params, init_fn = data.init_mlp(0, sizes), None
    # device_put copies without compiling (jnp.asarray would compile one program per array)
    batches = jax.device_put(data.make_batches(X, y, args.steps, batch_size=128, seed=0))
    return params, init_fn, batches, val, sizes


def _range_test(
    args: argparse.Namespace, params: Any, init_fn: Any, batches: Any, val: Any, optimizer: Any
):
    from lrjax import data
    from lrjax._lr_find import lr_find
    from lrjax._range_test import range_test

    if args.mode == "ramp":  # one run: --seeds 1 (checked), so params is seed 0's
        return lr_find(
            data.mlp_loss,
            params,
            batches,
            optimizer,
            min_lr=args.min_lr,
            max_lr=args.max_lr,
            num_steps=args.steps,
            progress=False if args.no_progress else None,
        )
    return range_test(
        data.mlp_loss,
        params,
        batches,
        optimizer=optimizer,
        min_lr=args.min_lr,
        max_lr=args.max_lr,
        num_lrs=args.num_lrs,
        num_steps=args.steps,
        seeds=args.seeds,
        init_fn=init_fn,
        progress=False if args.no_progress else None,
        **({"val_batches": val} if val is not None else {}),
    )


def _report(
    args: argparse.Namespace, result: Any, name: str, n: int, sizes: tuple[int, ...], seconds: float
) -> None:
    """Prints the header line, the table, the suggestions and the status counts."""
    arch = "-".join(str(s) for s in sizes)
    what = f"{args.num_lrs} rates side by side" if args.mode == "parallel" else "one ramp"
    held = _held_out(args, n)
    print(
        f"lrjax find: {args.optimizer}, {what}, {args.steps} steps, "
        f"rates {args.min_lr:g}..{args.max_lr:g}, on {name} ({n} samples"
        f"{f', {held} held out' if held else ''}, MLP {arch}); {seconds:.1f} s"
    )
    print()
    lines = _table_parallel(result) if args.mode == "parallel" else _table_ramp(result)
    print("\n".join(lines))
    print()
    if args.mode == "parallel":
        try:
            lr = f"{result.suggest():.3g}"
        except ValueError as e:
            lr = f"n/a ({e})"
        why = {
            "budget": "the rate with the lowest validation loss, scaled by 1/3 for a run "
            "3x as long as this test (result.suggest_for(total_steps) for your run's length)",
            "near_best": "the smallest rate scoring within 10% of the score range above the "
            "best training score (hold out data with --val-fraction to score on it)",
        }[result.default_method]
        print(f"suggested rate: {lr}: {why}")
    if args.mode == "ramp" or args.fastai_rules:
        _print_fastai(args, result)
    counts = {s: int((result.status == s).sum()) for s in STATUSES}
    print("status: " + ", ".join(f"{n} {s}" for s, n in counts.items()))


def _print_fastai(args: argparse.Namespace, result: Any) -> None:
    """fastai's four rules, each with a short note (or why it has no answer)."""
    parallel = args.mode == "parallel"
    curve = "the score per rate" if parallel else "the smoothed loss along the ramp"
    print(f"fastai's rules, on {curve}:")
    notes = {
        "valley": "halfway into the longest decreasing stretch"
        + (" (on per-rate scores: well below the best rate)" if parallel else ""),
        "minimum": "a tenth of the rate at the lowest loss (conservative)",
        "steep": "steepest descent (aggressive)",
        "slide": "interval slide rule",
    }
    for method, note in notes.items():
        try:
            value = f"{result.suggest(method):.3g}"
        except ValueError as e:
            value, note = "n/a", str(e)
        print(f"  {method:<8} {value:>9}   {note}")


def compute(args: argparse.Namespace) -> Any:
    """The range-test result ``lrjax find`` computes for parsed ``args`` (no output)."""
    _check_args(args)
    X, y, _ = load_data(args)
    params, init_fn, batches, val, _ = _setup(args, X, y)
    return _range_test(args, params, init_fn, batches, val, optimizer_by_name(args.optimizer))
