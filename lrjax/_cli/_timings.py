"""Phase times for ``lrjax find --timings``: where the seconds of one run go.

Start-up is the time from the process' start (Linux: ``/proc/self/stat``) to
the command's first line, i.e. the interpreter and the imports. Compile time
comes from JAX's own monitoring events (tracing, lowering to MLIR, XLA
compilation or a read from the persistent cache), merged as time spans so
nested events count once; ``run`` is the range test's wall time minus that.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_COMPILE_SPANS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
_CACHE_HIT = "/jax/compilation_cache/cache_hits"


def process_age() -> float | None:
    """Seconds since this process started, or ``None`` where the OS does not say (non-Linux).

    Example:
      >>> age = process_age()
      >>> age is None or age > 0
      True
    """
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22: starttime
        return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


@dataclass
class CompileStats:
    """What JAX compiled while :func:`watch_compiles` was open.

    Attributes:
      seconds: wall time inside tracing, lowering and XLA compilation (or cache reads).
      programs: XLA executables built or read from the persistent cache.
      cache_hits: of those, the ones read from the persistent cache.
    """

    seconds: float = 0.0
    programs: int = 0
    cache_hits: int = 0
    spans: list[tuple[float, float]] = field(default_factory=list)

    def finish(self) -> None:
        """Merges the recorded spans into ``seconds`` (overlapping spans count once)."""
        total, end = 0.0, float("-inf")
        for a, b in sorted(self.spans):
            if b <= end:
                continue
            total += b - max(a, end)
            end = b
        self.seconds = total


@contextmanager
def watch_compiles() -> Iterator[CompileStats]:
    """Counts JAX compilations (and their time) inside the ``with`` block.

    Example:
      >>> import jax
      >>> with watch_compiles() as stats:
      ...     _ = jax.jit(lambda x: x * 7 - 1)(3.0)
      >>> stats.programs
      1
    """
    from jax import monitoring

    stats = CompileStats()

    def on_span(event: str, start: float, end: float, **kwargs: object) -> None:
        if event in _COMPILE_SPANS:
            stats.spans.append((start, end))
        if event == _BACKEND_COMPILE:
            stats.programs += 1

    def on_event(event: str, **kwargs: object) -> None:
        if event == _CACHE_HIT:
            stats.cache_hits += 1

    monitoring.register_event_time_span_listener(on_span)
    monitoring.register_event_listener(on_event)
    try:
        yield stats
    finally:
        monitoring.unregister_event_time_span_listener(on_span)
        monitoring.unregister_event_listener(on_event)
        stats.finish()


@dataclass
class Phases:
    """Named wall-clock phases, printed as one line."""

    started: float = field(default_factory=time.perf_counter)
    startup: float | None = field(default_factory=process_age)
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Adds the time spent in the ``with`` block to phase ``name``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    def line(self, compiles: CompileStats, strategy: str | None = None) -> str:
        """``lrjax find timings: startup 0.71 s, ... ; total 2.10 s (5 programs, 4 cached)``,
        and the range test's execution strategy when given."""
        parts = []
        if self.startup is not None:
            parts.append(f"startup {self.startup:.2f} s")
        parts += [f"{name} {s:.2f} s" for name, s in self.seconds.items()]
        total = (self.startup or 0.0) + time.perf_counter() - self.started
        return (
            f"lrjax find timings: {', '.join(parts)}; total {total:.2f} s "
            f"({compiles.programs} programs compiled or loaded, "
            f"{compiles.cache_hits} from the persistent cache)"
            + (f"; strategy {strategy}" if strategy else "")
        )
