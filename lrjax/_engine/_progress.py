"""Progress for long runs: a rich bar, or a plain line every few seconds on stderr.

Nothing is shown for runs that finish within ``delay`` seconds (``DELAY_S``,
about 2 s): a timer thread starts the report, so even one long jitted call
shows elapsed time. Then, with ``progress=True`` or ``None`` (the default):

- a rich bar where rich can draw one (stderr is a terminal or a notebook, and
  rich, from the ``[demo]`` extra, is installed);
- otherwise a plain line on stderr every ``interval`` seconds (``INTERVAL_S``)
  and one at the end, e.g. ``range test: 32 rates x 100 steps: 8/32 done, 12 s``
  (a log file, CI, a pipe, or no rich).

``progress=False`` shows nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

DELAY_S = 2.0
INTERVAL_S = 5.0


def progress_enabled(progress: bool | None) -> bool:
    """Resolves ``progress``: ``None`` (auto) and ``True`` report, ``False`` does not.

    Whether the report is a bar or plain lines is decided when it starts (see
    :class:`ProgressBar`).
    """
    if progress is None:
        return True
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None (auto), got {progress!r}")
    return progress


def rich_can_draw() -> bool:
    """Whether rich is installed and stderr can show a live bar (terminal or notebook)."""
    try:
        from rich.console import Console
    except ImportError:
        return False
    console = Console(stderr=True)
    return bool(console.is_terminal or console.is_jupyter)


class ProgressBar:
    """Context manager counting finished units; reports after ``delay`` seconds.

    Args:
      total: the number of units (copies, rounds) the run finishes.
      enabled: report at all (:func:`progress_enabled`).
      description: what runs, e.g. ``"range test: 32 rates x 100 steps"``.
      delay: seconds before anything is shown.
      interval: seconds between plain lines (when no bar can be drawn).

    Example:
      >>> with ProgressBar(total=4, enabled=False) as bar:
      ...     bar.advance(4)
    """

    def __init__(
        self,
        total: int,
        enabled: bool,
        description: str = "",
        delay: float = DELAY_S,
        interval: float = INTERVAL_S,
    ):
        self.total = int(total)
        self.enabled = enabled
        self.description = description
        self.delay = delay
        self.interval = interval
        self.done = 0
        self.lines_written = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress: Any = None
        self._task: Any = None
        self._closed = False
        self._t0 = 0.0

    def __enter__(self) -> ProgressBar:
        self._t0 = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._report, daemon=True)
            self._thread.start()
        return self

    def _report(self) -> None:
        if self._stop.wait(self.delay):
            return
        if rich_can_draw():
            self._start_bar()
            return
        while True:
            with self._lock:
                if self._closed:
                    return
                self._write_line()
            if self._stop.wait(self.interval):
                return

    def _line(self) -> str:
        elapsed = time.monotonic() - self._t0
        label = f"{self.description}: " if self.description else ""
        return f"{label}{self.done}/{self.total} done, {elapsed:.0f} s"

    def _write_line(self) -> None:
        stream = sys.stderr
        stream.write(self._line() + "\n")
        stream.flush()
        self.lines_written += 1

    def _start_bar(self) -> None:
        with self._lock:
            if self._closed:
                return
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=True,
            )
            self._task = self._progress.add_task(
                self.description, total=self.total, completed=self.done
            )
            self._progress.start()

    def advance(self, n: int) -> None:
        """Marks ``n`` more units as finished."""
        with self._lock:
            self.done += n
            if self._progress is not None:
                self._progress.update(self._task, completed=self.done)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with self._lock:
            self._closed = True
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
            elif self.lines_written:  # a run long enough to report ends with its total
                self._write_line()
