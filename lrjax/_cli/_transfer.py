"""``lrjax transfer``: the demo MLP at several widths, and the rate at a wider one."""

from __future__ import annotations

import argparse
import functools
import math
import time
from typing import Any

from lrjax._cli._errors import UsageError, save_figure
from lrjax._cli._find import check_out_format, hold_out, load_data, optimizer_by_name


def _widths(text: str) -> list[int]:
    try:
        widths = [int(w) for w in text.split(",")]
    except ValueError:
        raise UsageError(f"--widths must be integers separated by commas, got {text!r}") from None
    if len(widths) < 3 or len(set(widths)) != len(widths) or min(widths) < 1:
        raise UsageError(f"--widths must be at least 3 distinct widths >= 1, got {text!r}")
    return sorted(widths)


def _check_args(args: argparse.Namespace) -> list[int]:
    widths = _widths(args.widths)
    for flag, value in (("--target", args.target), ("--steps", args.steps),
                        ("--num-lrs", args.num_lrs), ("--seeds", args.seeds)):  # fmt: skip
        if value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if args.num_lrs < 3:
        raise UsageError(f"--num-lrs must be >= 3 (a curve per width), got {args.num_lrs}")
    for flag, value in (("--min-lr", args.min_lr), ("--max-lr", args.max_lr)):
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"{flag} must be a finite number > 0, got {value}")
    if args.min_lr >= args.max_lr:
        raise UsageError(f"--min-lr must be < --max-lr, got {args.min_lr:g} >= {args.max_lr:g}")
    if not (math.isfinite(args.val_fraction) and 0 <= args.val_fraction < 1):
        raise UsageError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    check_out_format(args.out)
    return widths


def _mlp(sizes_of: Any, width: int, key: Any) -> Any:
    """The demo MLP with one hidden layer of ``width`` units, drawn from ``key``."""
    from lrjax import data

    return data.init_mlp(key, sizes_of(width))


def compute(args: argparse.Namespace) -> Any:
    """The :class:`TransferResult` ``lrjax transfer`` computes for parsed ``args``."""
    import jax

    from lrjax import data
    from lrjax._transfer import transfer

    widths = _check_args(args)
    X, y, _ = load_data(args)
    X, y, val = hold_out(X, y, args.val_fraction)
    batches = jax.device_put(data.make_batches(X, y, args.steps, batch_size=128, seed=0))
    sizes_of = lambda width: data.mlp_sizes(X, y, hidden=(width,))
    return transfer(
        data.mlp_loss,
        functools.partial(_mlp, sizes_of),
        batches,
        optimizer_by_name(args.optimizer),
        sizes=widths,
        target=args.target,
        num_steps=args.steps,
        min_lr=args.min_lr,
        max_lr=args.max_lr,
        num_lrs=args.num_lrs,
        seeds=args.seeds,
        val_batches=val,
        progress=False if args.no_progress else None,
    )


def _report(args: argparse.Namespace, result: Any, name: str, seconds: float) -> None:
    print(
        f"lrjax transfer: {args.optimizer}, the {name} MLP at widths "
        f"{', '.join(f'{s:g}' for s in result.sizes)}, {args.num_lrs} rates x {args.seeds} "
        f"seeds x {args.steps} steps each; {seconds:.1f} s"
    )
    print()
    print(f"{'width':>7}  {'best rate':>9}  {'interval':>19}")
    print("-" * 40)
    for size, rate, (lo, hi), edge in zip(
        result.sizes, result.optima, result.optima_intervals, result.at_edge
    ):
        note = "  (at the edge of the rates)" if edge else ""
        print(f"{size:>7g}  {rate:>9.3g}  {lo:>9.3g} .. {hi:<7.3g}{note}".rstrip())
    print()
    print(f"rule: {result.rule} ({result.reason})")
    print(
        f"law: rate ~ width^{result.exponent:.2f} (fitted {result.fitted_exponent:.2f}, "
        f"{result.level:.0%} interval {result.fitted_exponent_interval[0]:.2f} .. "
        f"{result.fitted_exponent_interval[1]:.2f})"
    )
    lo, hi = result.interval
    print(
        f"rate at width {result.target:g}: {result.rate:.3g} ({result.level:.0%} interval "
        f"{lo:.3g} .. {hi:.3g})"
    )
    print(
        f"compute: the small runs cost {result.compute_ratio:.2g}x one run at width "
        f"{result.target:g}"
    )
    for w in result.warnings:
        print(f"warning: {w}")


def run_transfer(args: argparse.Namespace) -> int:
    """Runs ``lrjax transfer`` for parsed arguments; returns the exit code."""
    import warnings

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # printed with the report
        result = compute(args)
    name = "digits" if not args.data else args.data
    _report(args, result, name, time.perf_counter() - start)
    from lrjax._results import agg_figure

    fig = agg_figure((11, 4), layout="constrained")
    result.plot(ax=tuple(fig.subplots(1, 2)))
    save_figure(fig, args.out, dpi=100)
    print(f"wrote {args.out}")
    return 0
