"""The ``lrjax`` command: ``lrjax find``, ``lrjax plot``, ``lrjax list``.

Errors a user can cause (a bad flag, file or spec) end with one line on stderr
and exit code 2, never a traceback. ``find`` and ``plot`` keep JAX's compiled
programs in a persistent cache (``$XDG_CACHE_HOME/lrjax/jax``, else
``~/.cache/lrjax/jax``) so that a second run skips compiling; ``--no-cache`` or
``LRJAX_NO_CACHE=1`` turns it off.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from typing import Any

from lrjax._cli._errors import EXIT_USAGE, UsageError
from lrjax._cli._find import compute
from lrjax._cli._parser import build_parser
from lrjax._cli._schedules import parse_spec, plain_text

__all__ = ["build_parser", "find_result", "main", "parse_spec", "plain_text", "run"]


def find_result(argv: list[str] | None = None) -> Any:
    """The range-test result ``lrjax find`` computes for ``argv`` (e.g. ``[]``).

    Used to draw the README's picture from the command's own code path.
    """
    args = build_parser().parse_args(["find", *(argv or []), "--no-progress"])
    return compute(args)


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
    skips its collections over every object JAX and matplotlib created (what
    it saves: ``benchmarks/README.md``, CLI start-up); the process ends right
    after, so nothing that matters is left uncollected. ``main`` itself leaves
    the collector alone, for callers that keep running.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
