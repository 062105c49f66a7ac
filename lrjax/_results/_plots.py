"""Every picture lrjax draws, in one module (matplotlib imported when drawing).

The matplotlib helpers (a figure without pyplot, axes to draw on), schedules
against the step (:func:`plot_schedule`, public as ``lrjax.plotting``), and
every result's pictures: the result classes' ``plot`` methods call these
functions, and ``lrjax find`` draws :func:`range_test_figure`. Nothing here
computes a result: it reads the fields and the rules of the result it is given.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from lrjax._checks import int_dtype
from lrjax._results._score import copy_scores
from lrjax._rules import score_window

# ------------------------------------------------------------ matplotlib


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


def range_test_figure(result: Any) -> Any:
    """The range-test plot and the training curves, side by side (``lrjax find``).

    Drawn on an Agg figure without pyplot, with fixed margins (no layout engine
    passes) at a moderate resolution, and with one tick per decade on the log
    axes (the rates span many decades; minor ticks there are a hundred artists
    that cost a tenth of a second and add only clutter).
    """
    from matplotlib.ticker import NullLocator

    fig = agg_figure((12, 4.2))
    fig.subplots_adjust(left=0.06, right=0.97, bottom=0.12, top=0.92, wspace=0.18)
    ax1, ax2 = fig.subplots(1, 2)
    result.plot(ax=ax1)
    result.plot_curves(ax=ax2)
    for axis in (a for ax in fig.axes for a in (ax.xaxis, ax.yaxis)):
        if axis.get_scale() == "log":  # the rate axis and the colour bar
            axis.set_minor_locator(NullLocator())
    return fig


# --------------------------------------------------------------- results


def mark_suggestions(ax: Any, result: Any, methods: Sequence[str], strict: bool) -> None:
    """The first method is the suggestion (a large star); the others small circles."""
    for i, m in enumerate(methods):
        try:
            lr, (px, py) = result.suggestion(m)
        except ValueError:
            if strict:
                raise
            continue
        if i == 0:
            label = f"suggested ({m}): {lr:.2g}"
            ax.plot([px], [py], "*", ms=16, color="red", label=label, zorder=6)
            continue
        # fastai marks `minimum` at the lowest point, though it suggests a tenth of it.
        note = f" (marker at {px:.2g})" if not np.isclose(px, lr) else ""
        ax.plot([px], [py], "o", ms=8, color=f"C{i + 1}", label=f"{m}: {lr:.2g}{note}", zorder=5)


def clip_ylim(ax: Any, values: np.ndarray, ref: float) -> None:
    """Keeps blow-ups from squashing the plot: the top is at most 3x the initial loss."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if not values.size or not (math.isfinite(ref) and ref > 0) or values.max() <= 3 * ref:
        return
    lo, hi = values.min(), 3 * ref
    pad = 0.05 * (hi - lo)
    ax.set_ylim(lo - pad, hi + pad)


def range_test_plot(result: Any, ax: Any = None, suggestions: Sequence[str] | None = None):
    """:meth:`RangeTestResult.plot`: score vs rate, the suggestion marked."""
    fig, ax = figure_and_axes(ax, (6.5, 4))
    lrs = result.lrs
    ok = np.isfinite(result.scores)
    w = score_window(result.num_steps)
    if result.val_losses is not None:
        label = f"validation loss after {result.num_steps} steps"
    else:
        label = f"training loss, mean of the last {w} steps"
    ax.plot(lrs[ok], result.scores[ok], "o-", ms=3, color="C0", label=label)
    values = [result.scores[ok]]
    if result.val_losses is not None:
        train, _, _ = copy_scores(result.losses, result.stop_step)
        ax.plot(
            lrs[ok],
            train[ok],
            "-",
            color="C7",
            alpha=0.6,
            lw=1,
            label=f"training loss, mean of the last {w} steps",
        )
        values.append(train[ok])
    if result.losses.shape[0] > 1 and ok.any():
        mid, std = result.scores[ok], result.score_std[ok]
        ax.fill_between(
            lrs[ok], mid - std, mid + std, color="C0", alpha=0.2, label="±1 std over seeds"
        )
    range_test_shade_diverged(result, ax)
    interval = result.interval
    if interval is not None:
        lo, hi = interval
        ax.axvspan(lo / 1.05, hi * 1.05, color="C2", alpha=0.15, label="as good as best (seeds)")
    default = (result.default_method, "best")
    methods = default if suggestions is None else tuple(suggestions)
    mark_suggestions(ax, result, methods, strict=suggestions is not None)
    clip_ylim(ax, np.concatenate(values), float(np.nanmean(result.losses[:, :, 0])))
    ax.set_xscale("log")
    ax.set_xlabel(f"learning rate (constant for {result.num_steps} steps; log scale)")
    ax.set_ylabel(result.score_label)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("learning-rate range test (parallel)", fontsize=10)
    return fig


def range_test_shade_diverged(result: Any, ax: Any):
    """Red bands over the rates that diverged."""
    lrs = result.lrs
    edges = np.sqrt(lrs[1:] * lrs[:-1]) if lrs.size > 1 else np.array([])
    left = np.concatenate([[lrs[0] / 1.2], edges])
    right = np.concatenate([edges, [lrs[-1] * 1.2]])
    first = True
    k = 0
    while k < lrs.size:
        if not result.diverged[k]:
            k += 1
            continue
        j = k
        while j + 1 < lrs.size and result.diverged[j + 1]:
            j += 1
        ax.axvspan(left[k], right[j], color="red", alpha=0.1, label="diverged" if first else None)
        first = False
        k = j + 1


def range_test_plot_curves(result: Any, ax: Any = None):
    """:meth:`RangeTestResult.plot_curves`: loss vs step for each rate."""
    fig, ax = figure_and_axes(ax, (6.5, 4))
    # colormaps and ScalarMappable without pyplot: drawing on a given
    # (e.g. Agg) figure needs no GUI backend
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm

    steps = np.arange(result.num_steps)
    norm = LogNorm(vmin=result.lrs.min(), vmax=max(result.lrs.max(), result.lrs.min() * 1.0001))
    cmap = colormaps["viridis"]
    with warnings.catch_warnings():  # all-NaN steps after a divergence
        warnings.simplefilter("ignore", RuntimeWarning)
        curves = np.nanmean(result.losses, axis=0)
    for k, lr in enumerate(result.lrs):
        ls = "--" if result.diverged[k] else "-"
        ax.plot(steps, curves[k], color=cmap(norm(lr)), lw=1.0, ls=ls)
    sm = ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label="learning rate (log scale)")
    clip_ylim(ax, curves[np.isfinite(curves)], float(np.nanmean(result.losses[:, :, 0])))
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (mean over seeds; dashed: diverged)")
    ax.grid(alpha=0.3)
    ax.set_title("training curves (parallel)", fontsize=10)
    return fig


def ramp_plot(result: Any, ax: Any = None, suggestions: Sequence[str] | None = None):
    """:meth:`RampResult.plot`: the smoothed loss along the ramp."""
    fig, ax = figure_and_axes(ax, (6.5, 4))
    lrs = result.lrs
    stop = result.num_steps if result.stop_step < 0 else result.stop_step + 1
    ax.plot(lrs[:stop], result.losses[:stop], color="C0", alpha=0.25, lw=0.8, label="loss")
    ax.plot(lrs[:stop], result.smoothed[:stop], color="C0", label="smoothed (EMA, beta 0.98)")
    if result.stop_step >= 0:
        ax.axvspan(lrs[result.stop_step], lrs.max(), color="red", alpha=0.1, label="diverged")
    methods = result.methods if suggestions is None else tuple(suggestions)
    mark_suggestions(ax, result, methods, strict=suggestions is not None)
    values = np.concatenate([result.smoothed[:stop], result.losses[:stop]])
    clip_ylim(ax, values, float(result.smoothed[0]))
    ax.set_xscale("log")
    ax.set_xlabel("learning rate at that step of the ramp (log scale)")
    ax.set_ylabel("training loss at that step")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("learning-rate range test (ramp)", fontsize=10)
    return fig


def ramp_plot_curves(result: Any, ax: Any = None):
    """The raw and smoothed loss vs step (:meth:`RampResult.plot_curves`)."""
    fig, ax = figure_and_axes(ax, (6.5, 4))
    steps = np.arange(result.num_steps)
    ax.plot(steps, result.losses, color="C0", alpha=0.3, lw=0.8, label="loss")
    ax.plot(steps, result.smoothed, color="C0", label="smoothed (EMA, beta 0.98)")
    ax.legend(fontsize=8)
    finite = result.losses[np.isfinite(result.losses)]
    clip_ylim(ax, finite, float(result.smoothed[0]))
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.set_title("training curves (ramp)", fontsize=10)
    return fig


def sweep_plot(result: Any, ax: Any = None):
    """:meth:`SweepResult.plot`: score vs the first hyperparameter."""
    fig, ax = figure_and_axes(ax, (6.5, 4))
    x = result.grid[result.names[0]].astype(np.float64)
    ok = np.isfinite(result.scores)
    if len(result.names) >= 2:
        other = result.grid[result.names[1]]
        for i, v in enumerate(np.unique(other)):
            sel = (other == v) & ok
            order = np.argsort(x[sel])
            ax.plot(
                x[sel][order],
                result.scores[sel][order],
                "o-",
                ms=3,
                color=f"C{i % 10}",
                label=f"{result.names[1]}={v:.3g}",
            )
    else:
        order = np.argsort(x[ok])
        ax.plot(x[ok][order], result.scores[ok][order], "o-", ms=3)
    pos = x[x > 0]
    log_x = bool(pos.size == x.size and pos.size and pos.max() / pos.min() > 10)
    if log_x:
        ax.set_xscale("log")
    best = result.best_index
    if best is not None:
        ax.plot([x[best]], [result.scores[best]], "*", ms=14, color="red", label="best")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_xlabel(f"{result.names[0]} (log scale)" if log_x else result.names[0])
    ax.set_ylabel(result.score_label)
    ax.grid(alpha=0.3, which="both")
    return fig


def tune_plot(result: Any):
    """:meth:`TuneResult.plot`: scores per round and each hyperparameter's path."""
    plt = require_matplotlib()
    h = result.history
    panels = [("score", h.scores), *((n, h.values[n]) for n in result.names)]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.6 * len(panels), 3.4), layout="constrained", squeeze=False
    )
    lineage = result.lineage()
    R, P = h.scores.shape
    for ax, (name, y) in zip(axes[0], panels):
        y = np.asarray(y, np.float64)
        ok = np.isfinite(h.scores) & h.active
        for r in range(R):
            for i in range(P):
                if not ok[r, i]:
                    continue
                color = "k" if lineage[r] == i else f"C{i % 10}"
                p = h.parents[r, i]
                if r > 0 and ok[r - 1, p]:
                    ax.plot(
                        [r, r + 1],
                        [y[r - 1, p], y[r, i]],
                        "-" if p == i else "--",
                        color=color,
                        lw=1.6 if color == "k" else 0.8,
                        alpha=1.0 if color == "k" else 0.6,
                    )
                ax.plot([r + 1], [y[r, i]], "o", ms=2.5, color=color)
        finite = y[ok]
        log = result.kinds.get(name) == "log" or (
            name == "score" and finite.size and finite.min() > 0
            and finite.max() / finite.min() > 10
        )  # fmt: skip
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("round")
        # the score's label is a sentence: wrapped to the panel's width
        title = textwrap.fill(result.score_label, 44) if name == "score" else name
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, which="both")
    return fig


#: Each rule's marker at the target in :func:`transfer_plot` (hollow, its own color).
TRANSFER_MARKERS = {"fit": "s", "theory": "^", "shrunk": "v", "reuse": "D"}


def transfer_plot(result: Any, ax: Any = None):
    """:meth:`TransferResult.plot`: score vs rate per size; the law in log-log."""
    fig, curves, law = transfer_axes(ax)
    size_name = "width" if result.along == "width" else "training steps"
    transfer_draw_curves(curves, result, size_name)
    transfer_draw_law(law, result, size_name)
    return fig


def transfer_axes(ax: Any) -> tuple[Any, Any, Any]:
    """``(figure, curves, law)``: a new figure with two panels, or the two Axes given."""
    if ax is None:
        plt = require_matplotlib()
        fig, (curves, law) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
        return fig, curves, law
    axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
    if len(axes) != 2:
        raise ValueError(f"ax must be two matplotlib Axes (curves, law), got {ax!r}")
    curves, law = axes
    return curves.figure, curves, law


def transfer_draw_curves(ax: Any, result: Any, size_name: str) -> None:
    """Each size's mean score against rate, its optimum marked with its interval."""
    values = []
    for i, (size, rates, mean) in enumerate(zip(result.sizes, result.rates, result.mean_curves())):
        ok = np.isfinite(mean)
        color = f"C{i % 10}"
        ax.plot(rates[ok], mean[ok], "o-", ms=3, color=color, label=f"{size_name} {size:g}")
        values.append(mean[ok])
        if np.isfinite(result.optima[i]):
            transfer_mark_optimum(ax, result, i, rates[ok], mean[ok], color)
    finite_init = result.init_losses[np.isfinite(result.init_losses)]
    ref = float(finite_init.max()) if finite_init.size else math.nan
    clip_ylim(ax, np.concatenate(values) if values else np.array([]), ref)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale); diamonds: each size's best, with its interval")
    ax.set_ylabel(textwrap.fill(f"{result.score_label} (mean over seeds)", 50))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("score against rate at each size", fontsize=10)


def transfer_mark_optimum(
    ax: Any, result: Any, i: int, rates: np.ndarray, mean: np.ndarray, color: str
) -> None:
    """Size ``i``'s best rate on its curve (finite ``rates`` and ``mean``), with its interval."""
    best = result.optima[i]
    y = float(np.interp(np.log(best), np.log(rates), mean))
    lo, hi = result.optima_intervals[i]
    xerr = [[best - lo], [hi - best]] if np.isfinite(lo) else None
    marker = "X" if result.at_edge[i] else "D"  # X: at the edge of the rates tried
    ax.errorbar([best], [y], xerr=xerr, fmt=marker, ms=7, color=color, capsize=3, zorder=5)


def transfer_draw_law(ax: Any, result: Any, size_name: str) -> None:
    """The optima with their intervals, the chosen rule's line through the target, the
    target's rate with its interval, and each rule's prediction at the target."""
    pct = f"{result.level:.0%}"
    ok = np.isfinite(result.optima)
    if ok.any():
        lo, hi = result.optima_intervals[ok].T
        opt = result.optima[ok]
        yerr = np.where(np.isfinite(lo), [opt - lo, hi - opt], 0.0)
        label = f"best rate per size ({pct} interval)"
        ax.errorbar(result.sizes[ok], opt, yerr=yerr, fmt="o", color="C0", capsize=3, label=label)
    if np.isfinite(result.rate):
        transfer_draw_rule(ax, result, size_name, pct)
    for k, (rule, rate) in enumerate(result.predictions.items()):
        if np.isfinite(rate):
            style = {"ms": 9, "mfc": "none", "color": f"C{k + 1}", "label": f"{rule}: {rate:.3g}"}
            ax.plot([result.target], [rate], TRANSFER_MARKERS[rule], **style)
    ax.set_xscale("log")
    ax.set_yscale("log")
    # ticks at the sizes and the target (log ticks' minor labels collide within a decade)
    from matplotlib.ticker import NullFormatter

    ticks = np.unique(np.concatenate([result.sizes, [result.target]]))
    ax.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"{size_name} (log scale)")
    ax.set_ylabel("best learning rate (log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(f"the law, and the rate at {size_name} {result.target:g}", fontsize=10)


def transfer_draw_rule(ax: Any, result: Any, size_name: str, pct: str) -> None:
    """The chosen rule's line over the sizes and the target, and the target's rate (a
    star) with its interval."""
    span = np.concatenate([result.sizes, [result.target]])
    line = np.geomspace(span.min(), span.max(), 100)
    label = f"{result.rule}: rate ~ {size_name}^{result.exponent:.3g}"
    ax.plot(line, result.predict(line), "-", color="k", lw=1.2, label=label)
    lo, hi = result.interval
    yerr = [[result.rate - lo], [hi - result.rate]] if np.isfinite(lo) else None
    label = f"target {result.target:g}: {result.rate:.3g} ({pct} interval)"
    style = {"fmt": "*", "ms": 14, "color": "red", "capsize": 4, "zorder": 6, "label": label}
    ax.errorbar([result.target], [result.rate], yerr=yerr, **style)
