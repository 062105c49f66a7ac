"""Shared helpers for the benchmark scripts: machine info, interleaved timing, reports."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator

import jax
import numpy as np

#: JAX's own compile-phase events (tracing, lowering, XLA compilation).
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


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


@contextlib.contextmanager
def compile_seconds() -> Iterator[list[float]]:
    """Sums JAX's trace + lower + compile durations inside the block into ``out[0]``.

    Uses ``jax.monitoring`` events, so the figure is the time JAX itself spent
    compiling, not a difference of two noisy wall times.
    """
    out = [0.0]

    def listen(event: str, duration: float, **kwargs: object) -> None:
        if event in _COMPILE_EVENTS:
            out[0] += duration

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield out
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def matmul_peak(sizes: tuple[int, ...] | None = None, repeats: int = 9) -> tuple[float, int]:
    """The f32 matmul peak of this machine, measured now: ``(GFLOP/s, n)``.

    For each ``n``, the median GFLOP/s of ``repeats`` timings of a jitted
    ``[n, n] @ [n, n]``; the best size wins. (A median, not a maximum: on a
    shared machine single runs vary by 2x or more.) Sizes default to 512, 1024
    and 2048 on a CPU; an accelerator gets 4096 and 8192 too, and each timing
    there covers several products dispatched back to back, since one 2048
    product is over before the launch overhead is.
    """
    on_cpu = jax.default_backend() == "cpu"
    if sizes is None:
        sizes = (512, 1024, 2048) if on_cpu else (1024, 2048, 4096, 8192)
    per_timing = 1 if on_cpu else 10
    f = jax.jit(lambda a, b: a @ b)
    best, best_n = 0.0, 0
    for n in sizes:
        a = jax.random.normal(jax.random.PRNGKey(0), (n, n), np.float32)
        b = jax.random.normal(jax.random.PRNGKey(1), (n, n), np.float32)
        block(f(a, b))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            block([f(a, b) for _ in range(per_timing)])
            times.append((time.perf_counter() - t0) / per_timing)
        g = 2 * n**3 / statistics.median(times) / 1e9
        if g > best:
            best, best_n = g, n
    return best, best_n


def load_note() -> str:
    """The 1-minute load average next to the core count (a busy machine skews timings)."""
    try:
        return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    except OSError:  # pragma: no cover - not on every platform
        return "load average unknown"


class Report:
    """Prints each line as it comes and keeps it, to write the same report to a file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def write(self, path: str | None) -> None:
        """Writes the report to ``path`` (nothing when it is ``None``)."""
        if path:
            with open(path, "w") as f:
                f.write("\n".join(self.lines) + "\n")
