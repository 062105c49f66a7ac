"""Matplotlib helpers. matplotlib is imported lazily: ``pip install lrjax[demo]``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def require_matplotlib():
    """Imports ``matplotlib.pyplot`` (Agg when there is no display) or explains how to get it."""
    try:
        import matplotlib

        if not _has_display():
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "plotting needs matplotlib: pip install 'lrjax[demo]' (or pip install matplotlib)"
        ) from e
    return plt


def agg_figure(figsize: tuple[float, float] = (6.5, 4), **kwargs: Any):
    """A matplotlib ``Figure`` on the Agg canvas, made without ``pyplot``.

    For writing image files from scripts and servers: no GUI backend is
    loaded and pyplot keeps no reference to the figure (no ``plt.close`` needed).
    ``kwargs`` go to ``matplotlib.figure.Figure`` (e.g. ``layout="constrained"``).

    Example:
      >>> import io
      >>> fig = agg_figure((3, 2))
      >>> _ = fig.add_subplot().plot([0, 1], [1, 0])
      >>> fig.savefig(io.BytesIO(), format="png")
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "plotting needs matplotlib: pip install 'lrjax[demo]' (or pip install matplotlib)"
        ) from e
    fig = Figure(figsize=figsize, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def image_formats() -> dict[str, str]:
    """The file extensions ``Figure.savefig`` can write, each with its description.

    Example:
      >>> "png" in image_formats()
      True
    """
    fig = agg_figure()
    return dict(fig.canvas.get_supported_filetypes())


def figure_and_axes(ax: Any = None, figsize: tuple[float, float] = (6.5, 4)) -> tuple[Any, Any]:
    """``(figure, axes)``: those of ``ax`` when given, else a new figure's."""
    if ax is not None:
        return ax.figure, ax
    plt = require_matplotlib()
    return plt.subplots(figsize=figsize, layout="constrained")


def _has_display() -> bool:
    import os
    import sys

    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY"))


#: Longer step ranges are plotted at this many evenly spaced steps (a figure has
#: far fewer pixels, and a billion steps would not fit in memory).
MAX_POINTS = 100_000


def plot_schedule(
    schedules: Any,
    steps: int | Sequence[int] | np.ndarray,
    ax: Any = None,
    labels: Sequence[str] | None = None,
    logy: bool = False,
):
    """Plots one schedule or a list of schedules against the step.

    Args:
      schedules: a schedule (any ``step -> rate`` callable) or a list of them.
      steps: the number of steps (plots ``0 .. steps-1``; more than ``MAX_POINTS``
        are sampled at ``MAX_POINTS`` evenly spaced integer steps) or the steps
        themselves.
      ax: a matplotlib Axes to draw on; a new figure is made when ``None``.
      labels: one legend label per schedule (default: each schedule's ``repr``).
      logy: use a log scale for the rate.

    Returns:
      The matplotlib Figure.

    Example:
      >>> import lrjax
      >>> from lrjax.plotting import plot_schedule
      >>> fig = plot_schedule(lrjax.one_cycle(0.1, 1000), 1000)
    """
    from lrjax._checks import int_dtype

    require_matplotlib()  # a missing extra is reported before anything else
    if callable(schedules):
        schedules = [schedules]
    schedules = list(schedules)
    if not schedules:
        raise ValueError("schedules must hold at least one schedule, got an empty list")
    for i, s in enumerate(schedules):
        if not callable(s):
            raise TypeError(f"schedules[{i}] must be callable (step -> rate), got {s!r}")
    if isinstance(steps, (int, np.integer)):
        top = np.iinfo(int_dtype()).max + 1  # steps are ints of JAX's default width
        if not 1 <= steps <= top:
            raise ValueError(f"steps must be between 1 and {top}, got {steps!r}")
        if steps <= MAX_POINTS:
            xs = np.arange(int(steps))
        else:
            xs = np.unique(np.linspace(0, int(steps) - 1, MAX_POINTS).round().astype(np.int64))
    else:
        xs = np.asarray(steps)
        if xs.ndim != 1 or xs.size == 0:
            raise ValueError(f"steps must be an int or a non-empty 1-D array, got shape {xs.shape}")
    if labels is not None and len(labels) != len(schedules):
        raise ValueError(
            f"labels must have one entry per schedule, got {len(labels)} for {len(schedules)}"
        )
    fig, ax = figure_and_axes(ax, (6, 3.5))
    for i, s in enumerate(schedules):
        ys = np.asarray(s(xs))
        label = labels[i] if labels is not None else _label(s)
        ax.plot(xs, ys, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate (log scale)" if logy else "learning rate")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(schedules) > 1 or labels is not None:
        ax.legend(fontsize=8)
    else:
        ax.set_title(_label(schedules[0]), fontsize=8)
    return fig


def _label(s: Any) -> str:
    text = repr(s)
    return text if len(text) <= 90 else text[:87] + "..."
