"""The ``lrjax`` argument parser: ``find``, ``transfer``, ``plot`` and ``list``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from lrjax._cli._errors import HelpFormatter, Parser
from lrjax._cli._find import run_find
from lrjax._cli._schedules import cmd_list, cmd_plot
from lrjax._cli._transfer import run_transfer


def _add_cache_flag(parser: argparse.ArgumentParser) -> None:
    from lrjax._compile_cache import ENV_NO_CACHE

    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the persistent compilation cache; by default compiled programs are "
        "kept in $XDG_CACHE_HOME/lrjax/jax (or ~/.cache/lrjax/jax) so the next run skips "
        f"compiling them ({ENV_NO_CACHE}=1 does the same)",
    )


def version_line() -> str:
    """``lrjax 0.1.0 (jax 0.4.35, optax 0.2.4)``, from the installed metadata (nothing imported)."""
    from importlib import metadata

    from lrjax import __version__

    def installed(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return f"lrjax {__version__} (jax {installed('jax')}, optax {installed('optax')})"


class _Version(argparse.Action):
    """``--version``: argparse's version action, the line computed only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> NoReturn:
        sys.stdout.write(version_line() + "\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The ``lrjax`` argument parser (``find``, ``transfer``, ``plot``, ``list``)."""
    parser = Parser(
        prog="lrjax",
        description="Learning-rate schedules, adaptive rates and a parallel range test for JAX.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--version", action=_Version, help="print the versions of lrjax, jax and optax and exit"
    )
    sub = parser.add_subparsers(
        dest="command", metavar="{find,transfer,plot,list}", parser_class=Parser
    )
    _add_find(sub)
    _add_transfer(sub)
    _add_plot(sub)
    lst = sub.add_parser("list", help="list the schedule catalogue", formatter_class=HelpFormatter)
    lst.set_defaults(func=cmd_list)
    return parser


def _add_find(sub: Any) -> None:
    """``lrjax find``: the range test on the demo or ``--data``."""
    find = sub.add_parser(
        "find",
        help="run the learning-rate range test (on the embedded digits demo or --data)",
        description="Trains many learning rates side by side (jax.vmap) and suggests one.",
        formatter_class=HelpFormatter,
    )
    find.add_argument(
        "--data",
        help="an .npz file with arrays X (features) and y (int labels) "
        "(default: the embedded digits data)",
    )
    find.add_argument(
        "--optimizer", default="adam", help="adam, sgd, momentum, adamw, rmsprop or adabound"
    )
    find.add_argument(
        "--min-lr",
        type=float,
        default=1e-7,
        help="smallest rate (default: 1e-7, as in lrjax.range_test and fastai's lr_find: one "
        "range everywhere, low enough for SGD on badly scaled inputs)",
    )
    find.add_argument("--max-lr", type=float, default=10.0, help="largest rate")
    find.add_argument("--num-lrs", type=int, default=32, help="number of rates")
    find.add_argument("--steps", type=int, default=100, help="training steps per rate")
    find.add_argument("--seeds", type=int, default=1, help="initialisations per rate")
    find.add_argument(
        "--mode",
        default="parallel",
        help="parallel (many rates side by side) or ramp (one run along rising rates, as "
        "fastai's lr_find)",
    )
    find.add_argument(
        "--val-fraction",
        type=float,
        default=0.2,
        help="share of the data held out to score each rate (parallel; 0: score on the "
        "training loss)",
    )
    find.add_argument(
        "--fastai-rules",
        action="store_true",
        help="also print fastai's valley/minimum/steep/slide rules (default: off; always "
        "printed for a ramp)",
    )
    find.add_argument("--out", default="lr_find.png", help="where to write the plot")
    find.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress report (by default, runs over 2 s show a bar on a terminal, "
        "else a line every few seconds on stderr)",
    )
    find.add_argument(
        "--timings",
        action="store_true",
        help="print the time of each phase (start-up, data, compile, run, plot) and the "
        "number of compiled programs to stderr (default: off; LRJAX_TIMINGS=1 turns it on)",
    )
    _add_cache_flag(find)
    find.set_defaults(func=run_find)


def _add_transfer(sub: Any) -> None:
    """``lrjax transfer``: the demo MLP at several widths, the rate at a wider one."""
    p = sub.add_parser(
        "transfer",
        help="predict the best rate for a width not trained, from small widths (lrjax.transfer)",
        description="Trains the demo MLP (one hidden layer) at several widths, each with many "
        "rates and seeds side by side, and predicts the best rate at --target.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--data", help="an .npz file with arrays X and y (default: the digits)")
    p.add_argument("--optimizer", default="adam", help="adam, sgd, momentum, adamw, rmsprop")
    p.add_argument("--widths", default="16,32,64,128", help="the small widths trained")
    p.add_argument("--target", type=int, default=1024, help="the width to predict the rate at")
    p.add_argument("--steps", type=int, default=100, help="training steps per run")
    p.add_argument("--min-lr", type=float, default=1e-5, help="smallest rate")
    p.add_argument("--max-lr", type=float, default=10.0, help="largest rate")
    p.add_argument("--num-lrs", type=int, default=16, help="rates per width")
    p.add_argument("--seeds", type=int, default=2, help="initialisations per rate and width")
    p.add_argument(
        "--val-fraction", type=float, default=0.2,
        help="share of the data held out to score each run (0: the training loss)",
    )  # fmt: skip
    p.add_argument("--out", default="transfer.png", help="where to write the plot")
    p.add_argument("--no-progress", action="store_true", help="no progress report")
    _add_cache_flag(p)
    p.set_defaults(func=run_transfer)


def _add_plot(sub: Any) -> None:
    """``lrjax plot SPEC``: a schedule's picture."""
    plot = sub.add_parser(
        "plot",
        help="plot a schedule given as name(key=value, ...) or JSON",
        description="Plots a schedule, e.g. lrjax plot 'one_cycle(max_value=0.1, "
        "total_steps=1000)' -o one_cycle.png",
        formatter_class=HelpFormatter,
    )
    plot.add_argument("spec", help="name(key=value, ...) or the JSON of Schedule.to_dict()")
    plot.add_argument("-o", "--out", default="schedule.png", help="output image file")
    plot.add_argument(
        "--steps",
        type=int,
        default=None,
        help="number of steps to plot (default: enough to show the whole shape, "
        "1.2x the schedule's longest step count)",
    )
    plot.add_argument(
        "--logy", action="store_true", help="log-scale the rate axis (default: linear)"
    )
    _add_cache_flag(plot)
    plot.set_defaults(func=cmd_plot)
