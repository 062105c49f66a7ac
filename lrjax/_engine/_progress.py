"""A progress bar for long runs: rich, imported lazily, shown only after a delay.

``progress=None`` means "auto": a bar only when stderr is a terminal. A bar is
never drawn for runs that finish within ``delay`` seconds (about 2 s): a timer
thread starts it, so even one long jitted call shows elapsed time.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

DELAY_S = 2.0


def progress_enabled(progress: bool | None) -> bool:
    """Resolves ``progress``: ``None`` is auto (only on a terminal)."""
    if progress is None:
        stream = sys.stderr
        return bool(getattr(stream, "isatty", lambda: False)())
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None (auto), got {progress!r}")
    return progress


class ProgressBar:
    """Context manager counting finished units; draws a rich bar after ``delay`` s.

    Example:
      >>> with ProgressBar(total=4, enabled=False) as bar:
      ...     bar.advance(4)
    """

    def __init__(self, total: int, enabled: bool, description: str = "", delay: float = DELAY_S):
        self.total = int(total)
        self.enabled = enabled
        self.description = description
        self.delay = delay
        self.done = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._progress: Any = None
        self._task: Any = None
        self._closed = False

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            self._timer = threading.Timer(self.delay, self._start)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _start(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    SpinnerColumn,
                    TextColumn,
                    TimeElapsedColumn,
                )
            except ImportError:  # pragma: no cover - rich is in the [demo] extra
                return
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
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
