"""The ``lrjax`` command: ``lrjax find``, ``lrjax plot``, ``lrjax list``.

Errors a user can cause (a bad flag, file or spec) end with one line on stderr
and exit code 2, never a traceback. ``find`` and ``plot`` keep JAX's compiled
programs in a persistent cache (``$XDG_CACHE_HOME/lrjax/jax``, else
``~/.cache/lrjax/jax``) so that a second run skips compiling; ``--no-cache`` or
``LRJAX_NO_CACHE=1`` turns it off.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import gc
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        raise UsageError(message)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default: argparse's ``(default: ...)`` unless the help says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or action.nargs == 0:
            return text  # switches say in words what happens without them
        return super()._get_help_string(action)


# ------------------------------------------------------------------ spec parsing


def parse_spec(spec: str):
    """Builds a schedule from JSON (``to_dict`` form) or ``name(key=value, ...)``.

    Calls may nest: ``warmup(cosine(init_value=0.1, steps=1000), steps=100)``.

    Example:
      >>> parse_spec("cosine(init_value=0.1, steps=100)")
      cosine(init_value=0.1, steps=100, end_value=0.0, exponent=1.0)
    """
    from lrjax.schedules import from_dict

    text = spec.strip()
    if not text:
        raise UsageError("empty schedule spec; try e.g. 'cosine(init_value=0.1, steps=1000)'")
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"schedule spec is not valid JSON: {e}") from None
        return _build(lambda: from_dict(data))
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise UsageError(
            f"cannot parse schedule spec {spec!r}; expected name(key=value, ...) or JSON"
        ) from None
    return _build(lambda: _eval_call(tree, spec))


def _build(make):
    try:
        return make()
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None


def _eval_call(node: ast.AST, spec: str):
    from lrjax.schedules import catalogue

    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise UsageError(f"schedule spec {spec!r} must be a call like name(key=value, ...)")
    name = node.func.id
    known = catalogue()
    if name not in known:
        raise UsageError(f"unknown schedule {name!r}; run 'lrjax list' (known: {sorted(known)})")
    args = [_eval_value(a, spec) for a in node.args]
    kwargs = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise UsageError(f"'**' is not allowed in schedule spec {spec!r}")
        kwargs[kw.arg] = _eval_value(kw.value, spec)
    try:
        return known[name](*args, **kwargs)
    except TypeError as e:
        raise UsageError(f"{name}: {e}") from None


def _eval_value(node: ast.AST, spec: str) -> Any:
    if isinstance(node, ast.Call):
        return _eval_call(node, spec)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval_value(e, spec) for e in node.elts]
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise UsageError(
            f"schedule spec {spec!r}: {ast.unparse(node)!r} is not a number, string or list"
        ) from None


# -------------------------------------------------------------------- commands


def _cmd_list(args: argparse.Namespace) -> int:
    from lrjax.schedules import CATALOGUE, COMPOSITIONS, catalogue

    width = max(len(n) for n in catalogue())
    for name, cls in CATALOGUE.items():
        print(f"{name:<{width}}  {plain_text(_first_line(cls))}")
    print()
    print("compositions: " + ", ".join(COMPOSITIONS) + " (and s * c, s1 + s2)")
    return 0


def _first_line(cls: type) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0]


_ROLE = re.compile(r":(?:[\w-]+:)+`([^`]*)`")  # :class:`x`, :py:func:`x`
_LITERAL = re.compile(r"``(.+?)``")
_INTERPRETED = re.compile(r"`([^`]+)`_{0,2}")  # `x`, `link`_


def _role_text(match: re.Match[str]) -> str:
    text = match.group(1).strip()
    if "<" in text and text.endswith(">"):  # :func:`the text <pkg.target>`
        return text[: text.index("<")].strip()
    text = text.lstrip("!")
    return text[1:].rsplit(".", 1)[-1] if text.startswith("~") else text


def plain_text(rest: str) -> str:
    """A line of reStructuredText as plain text: roles and literals lose their markup.

    Example:
      >>> plain_text("The momentum of :class:`~lrjax.one_cycle`, ``1/sqrt(t)`` decay.")
      'The momentum of one_cycle, 1/sqrt(t) decay.'
      >>> plain_text("See :func:`the schedule <lrjax.cosine>` and `optax`_.")
      'See the schedule and optax.'
    """
    text = _ROLE.sub(_role_text, rest)
    text = _LITERAL.sub(r"\1", text)
    return _INTERPRETED.sub(r"\1", text)


def _cmd_plot(args: argparse.Namespace) -> int:
    from lrjax import plotting

    sched = parse_spec(args.spec)
    top = 2**31  # steps 0 .. 2**31 - 1, the int32 range schedules are defined on
    if args.steps is not None and not 1 <= args.steps <= top:
        raise UsageError(f"--steps must be between 1 and {top}, got {args.steps}")
    steps = args.steps if args.steps is not None else min(_default_steps(sched), top)
    ax = plotting.agg_figure((6, 3.5), layout="constrained").add_subplot()  # no pyplot
    fig = plotting.plot_schedule(sched, steps, ax=ax, logy=args.logy)
    _save(fig, args.out)
    print(f"wrote {args.out}")
    return 0


def _default_steps(sched) -> int:
    """A horizon that shows the schedule's whole shape: 1.2x its longest step count."""
    import dataclasses

    from lrjax.schedules import Schedule

    counts: list[int] = []

    def visit(s) -> None:
        for f in dataclasses.fields(s):
            v = getattr(s, f.name)
            if isinstance(v, Schedule):
                visit(v)
            elif isinstance(v, (list, tuple)):
                for x in v:
                    if isinstance(x, Schedule):
                        visit(x)
                    elif isinstance(x, int) and not isinstance(x, bool):
                        counts.append(x)
            elif isinstance(v, int) and not isinstance(v, bool) and f.name != "period_mult":
                counts.append(v)

    visit(sched)
    if isinstance(sched, Schedule) and sched.name == "cosine_restarts":
        return int(sched.period * (1 + sched.period_mult + sched.period_mult**2))
    if isinstance(sched, Schedule) and sched.name == "cyclic":
        return 4 * (sched.step_size_up + (sched.step_size_down or sched.step_size_up))
    return max(10, int(1.2 * max(counts))) if counts else 1000


def _save(fig, out: str) -> None:
    try:
        fig.savefig(out, dpi=120)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot write {out!r}: {e}") from None


def _cmd_find(args: argparse.Namespace) -> int:
    from lrjax._range_test.cli import run_find

    return run_find(args)


def _add_cache_flag(parser: argparse.ArgumentParser) -> None:
    from lrjax._compile_cache import ENV_NO_CACHE

    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the persistent compilation cache; by default compiled programs are "
        "kept in $XDG_CACHE_HOME/lrjax/jax (or ~/.cache/lrjax/jax) so the next run skips "
        f"compiling them ({ENV_NO_CACHE}=1 does the same)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``lrjax`` argument parser (``find``, ``plot``, ``list``)."""
    parser = _Parser(
        prog="lrjax",
        description="Learning-rate schedules, adaptive rates and a parallel range test for JAX.",
        formatter_class=_HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="{find,plot,list}", parser_class=_Parser)
    find = sub.add_parser(
        "find",
        help="run the learning-rate range test (on the embedded digits demo or --data)",
        description="Trains many learning rates side by side (jax.vmap) and suggests one.",
        formatter_class=_HelpFormatter,
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
    find.add_argument("--mode", default="parallel", help="parallel or sweep")
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
        "printed for a sweep)",
    )
    find.add_argument("--out", default="lr_find.png", help="where to write the plot")
    find.add_argument(
        "--no-progress",
        action="store_true",
        help="hide the progress bar (by default it shows on a terminal for runs over 2 s)",
    )
    find.add_argument(
        "--timings",
        action="store_true",
        help="print the time of each phase (start-up, data, compile, run, plot) and the "
        "number of compiled programs to stderr (default: off; LRJAX_TIMINGS=1 turns it on)",
    )
    _add_cache_flag(find)
    find.set_defaults(func=_cmd_find)

    plot = sub.add_parser(
        "plot",
        help="plot a schedule given as name(key=value, ...) or JSON",
        description="Plots a schedule, e.g. lrjax plot 'one_cycle(max_value=0.1, "
        "total_steps=1000)' -o one_cycle.png",
        formatter_class=_HelpFormatter,
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
    plot.set_defaults(func=_cmd_plot)

    lst = sub.add_parser("list", help="list the schedule catalogue", formatter_class=_HelpFormatter)
    lst.set_defaults(func=_cmd_list)
    return parser


def _compilation_cache(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The persistent compilation cache for the command, unless ``--no-cache``/``LRJAX_NO_CACHE``.

    JAX's options are restored afterwards: ``main()`` called from Python leaves
    the caller's settings as they were.
    """
    from lrjax._compile_cache import cache_disabled_by_env, compilation_cache, default_cache_dir

    if getattr(args, "no_cache", True) or cache_disabled_by_env():
        return contextlib.nullcontext()
    folder = default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # e.g. a read-only home: run without the cache, and say so
        print(f"lrjax: note: compilation cache off ({e})", file=sys.stderr)
        return contextlib.nullcontext()
    return compilation_cache(folder)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lrjax`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        with _compilation_cache(args):
            return int(args.func(args) or 0)
    except UsageError as e:
        print(f"lrjax: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lrjax: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``lrjax list | head``): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def run() -> None:
    """The ``lrjax`` console script and ``python -m lrjax``: :func:`main`, then exit.

    The garbage collector is frozen before the interpreter exits, so shutdown
    skips its collections over every object JAX and matplotlib created (on a
    busy 2-core machine the exit after ``lrjax find`` went from about 0.8 s to
    0.1 s); the process ends right after, so nothing that matters is left
    uncollected. ``main`` itself leaves the collector alone, for callers that
    keep running.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
