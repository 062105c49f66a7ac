"""Shared helpers for the benchmark scripts: machine info and interleaved timing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import jax


def machine_info() -> str:
    """One line naming the machine, backend and versions."""
    import numpy as np
    import optax

    import lrjax

    dev = jax.devices()[0]
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"backend={jax.default_backend()} ({dev.device_kind}), "
        f"python {platform.python_version()}, jax {jax.__version__}, optax {optax.__version__}, "
        f"numpy {np.__version__}, lrjax {lrjax.__version__}"
    )


def block(x):
    """Waits for every array in ``x``."""
    return jax.block_until_ready(x)


def interleaved(fns: dict[str, Callable[[], object]], repeats: int = 7) -> dict[str, float]:
    """Median wall time of each thunk, run in ABAB... order so drift hits all equally.

    Each thunk is called once first as a warm-up (compilation is not timed).
    """
    for fn in fns.values():
        block(fn())
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            block(fn())
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def table(rows: list[list[object]], header: list[str]) -> str:
    """A plain Markdown table."""
    cells = [[str(c) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    lines = [fmt(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [fmt(r) for r in cells[1:]]
    return "\n".join(lines)
