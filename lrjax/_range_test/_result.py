"""`RangeTestResult`: the numbers of a range test, its suggestions and plots."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from lrjax._range_test import _suggest
from lrjax._range_test._diagnose import DEFAULT, Thresholds, diagnose_curves, diagnose_sweep

MODES = ("parallel", "sweep")


def score_window(num_steps: int) -> int:
    """Steps averaged into a parallel score: the last 10% (at least one)."""
    return max(1, num_steps // 10)


@dataclasses.dataclass(frozen=True, eq=False)
class RangeTestResult:
    """The outcome of :func:`lrjax.range_test`.

    Attributes:
      mode: ``"parallel"`` or ``"sweep"``.
      lrs: parallel: the ``K`` rates, increasing; sweep: the rate used at each step.
      losses: parallel: ``[seeds, K, num_steps]`` raw training loss, NaN after a
        copy diverged; sweep: ``[num_steps]``, NaN after the stop.
      smoothed: the debiased EMA (beta 0.98) of ``losses``, same shape; in a
        sweep this is the curve the suggestions use.
      scores: parallel: ``[K]`` mean loss over the last 10% of steps
        (``max(1, num_steps // 10)`` steps), averaged over seeds, ``inf`` when
        diverged; sweep: the smoothed loss at each step (NaN after the stop).
      score_std: parallel: ``[K]`` standard deviation of the score over seeds
        (0 with one seed, ``inf`` when diverged); sweep: ``None``.
      diverged: ``[K]`` (sweep: ``[num_steps]``) bool; a rate diverged if any
        seed did (sweep: steps from the stop on).
      status: ``[K]`` (sweep: ``[num_steps]``) labels ``diverged``,
        ``unstable``, ``slow`` or ``good`` (see :class:`lrjax.Thresholds`).
      stop_step: parallel: ``[seeds, K]`` step at which each copy diverged
        (``-1``: never); sweep: the step at which the sweep stopped, or ``-1``.
      num_steps: steps per copy (sweep: steps of the ramp).
      diverge_factor: the divergence threshold used.
      step_mode: sweep: ``"exp"`` or ``"linear"``; parallel: ``None``.
      interrupted: ``True`` when a ``KeyboardInterrupt`` cut the run short and
        only the finished rates are here.
    """

    mode: str
    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    scores: np.ndarray
    score_std: np.ndarray | None
    diverged: np.ndarray
    status: np.ndarray
    stop_step: Any
    num_steps: int
    diverge_factor: float
    step_mode: str | None = None
    interrupted: bool = False

    # ---------------------------------------------------------------- build

    @classmethod
    def from_parallel(
        cls,
        lrs: np.ndarray,
        losses: np.ndarray,
        smoothed: np.ndarray,
        stop_step: np.ndarray,
        diverge_factor: float,
        interrupted: bool = False,
        thresholds: Thresholds = DEFAULT,
    ) -> RangeTestResult:
        """Builds a parallel result from ``[seeds, K, T]`` engine outputs."""
        scores, score_std, diverged = parallel_scores(losses, stop_step)
        curves = np.mean(losses, axis=0)  # NaN only where some seed diverged
        return cls(
            mode="parallel",
            lrs=np.asarray(lrs, np.float64),
            losses=losses,
            smoothed=smoothed,
            scores=scores,
            score_std=score_std,
            diverged=diverged,
            status=diagnose_curves(curves, diverged, thresholds),
            stop_step=stop_step,
            num_steps=losses.shape[-1],
            diverge_factor=float(diverge_factor),
            interrupted=interrupted,
        )

    @classmethod
    def from_sweep(
        cls,
        lrs: np.ndarray,
        losses: np.ndarray,
        smoothed: np.ndarray,
        stop_step: int,
        diverge_factor: float,
        step_mode: str,
        thresholds: Thresholds = DEFAULT,
    ) -> RangeTestResult:
        """Builds a sweep result from ``[T]`` curves."""
        T = losses.shape[-1]
        stop = int(stop_step)
        diverged = np.arange(T) >= (T if stop < 0 else stop)
        return cls(
            mode="sweep",
            lrs=np.asarray(lrs, np.float64),
            losses=losses,
            smoothed=smoothed,
            scores=np.asarray(smoothed, np.float64),
            score_std=None,
            diverged=diverged,
            status=diagnose_sweep(smoothed, stop, thresholds),
            stop_step=stop,
            num_steps=T,
            diverge_factor=float(diverge_factor),
            step_mode=step_mode,
        )

    # ---------------------------------------------------------- suggestions

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``(lrs, losses)`` curve the suggestions act on.

        Parallel: the rates before the first diverged one and their scores.
        Sweep (as fastai's ``lr_find``): the smoothed loss, skipping the first
        ``num_steps // 10`` steps and the last 5 recorded before the stop, cut at
        the first non-finite value.
        """
        if self.mode == "parallel":
            bad = np.flatnonzero(self.diverged | ~np.isfinite(self.scores))
            end = int(bad[0]) if bad.size else self.lrs.size
            return self.lrs[:end], np.asarray(self.scores[:end], np.float64)
        recorded = self.num_steps if self.stop_step < 0 else self.stop_step + 1
        lo, hi = self.num_steps // 10, max(recorded - 5, 0)
        lrs = self.lrs[lo:hi]
        losses = np.asarray(self.smoothed[lo:hi], np.float64)
        bad = np.flatnonzero(~np.isfinite(losses))
        end = int(bad[0]) if bad.size else losses.size
        return lrs[:end], losses[:end]

    def suggest(self, method: str = "valley", **kwargs: Any) -> float:
        """A learning rate suggested from the curve (see :meth:`curve`).

        Args:
          method: ``"valley"`` (fastai's default: about halfway into the longest
            decreasing stretch; robust), ``"minimum"`` (a tenth of the rate at
            the lowest loss; conservative), ``"steep"`` (steepest descent of
            loss vs log-rate; aggressive, noise-sensitive) or ``"slide"``
            (fastai's interval slide rule; options ``lr_diff=15``,
            ``thresh=0.005``, ``adjust_value=1.0``; needs more than ``lr_diff``
            points).
          **kwargs: options of ``slide``.

        The rules are fastai's, made for a sweep, whose loss at a rate lags
        behind it. On a parallel result they act on the per-rate scores, where
        every rate was trained on its own: there ``valley`` and ``steep`` land
        one to two decades below the rate that trained best, and
        :attr:`best_lr` is the better pick (``benchmarks/suggestion_quality.py``
        trains with each and compares them with a dense grid).

        Returns:
          The suggested rate.

        Raises:
          ValueError: unknown method, or too few usable points (every rate
            diverged, or the sweep stopped within its first steps).

        Example:
          >>> import numpy as np
          >>> from lrjax._range_test import RangeTestResult
          >>> lrs = np.logspace(-4, 0, 5)
          >>> losses = np.array([[[2.3, 2.2], [2.3, 1.5], [2.3, 0.4], [2.3, 0.9], [2.3, 2.3]]])
          >>> r = RangeTestResult.from_parallel(lrs, losses, losses, -np.ones((1, 5), int), 4.0)
          >>> float(r.suggest("minimum"))
          0.001
        """
        return self._suggestion(method, **kwargs)[0]

    def _suggestion(self, method: str, **kwargs: Any) -> _suggest.Suggestion:
        if method not in _suggest.METHODS:
            raise ValueError(f"method must be one of {list(_suggest.METHODS)}, got {method!r}")
        lrs, losses = self.curve()
        if lrs.size == 0:
            at_start = np.size(self.stop_step) > 0 and np.all(np.asarray(self.stop_step) == 0)
            why = (
                (
                    "the loss is not finite at the initial params on the first batch "
                    "(every rate stopped at step 0); check params, batches and loss_fn"
                    if at_start
                    else "every rate diverged; lower min_lr"
                )
                if self.mode == "parallel"
                else f"the sweep stopped at step {self.stop_step}, too early to read a curve; "
                "lower max_lr or raise num_steps"
            )
            raise ValueError(f"no usable points for a suggestion: {why}")
        return _suggest.suggest(method, lrs, losses, **kwargs)

    def suggestions(self) -> dict[str, float | None]:
        """Every suggestion method's rate (``None`` where the curve is too short)."""
        out: dict[str, float | None] = {}
        for m in _suggest.METHODS:
            try:
                out[m] = self.suggest(m)
            except ValueError:
                out[m] = None
        return out

    @property
    def best_lr(self) -> float | None:
        """The best rate: parallel, the rate with the lowest score (the one that
        trained best over ``num_steps``); sweep, the ``valley`` suggestion.
        ``None`` when there is none (every rate diverged)."""
        if self.mode == "parallel":
            finite = np.isfinite(self.scores)
            if not finite.any():
                return None
            return float(self.lrs[np.argmin(np.where(finite, self.scores, np.inf))])
        try:
            return self.suggest("valley")
        except ValueError:
            return None

    def diagnose(self, **thresholds: float) -> np.ndarray:
        """Re-labels the rates with other thresholds (see :class:`Thresholds`).

        Example:
          >>> import numpy as np
          >>> from lrjax._range_test import RangeTestResult
          >>> losses = np.array([[[2.0, 1.9, 1.85, 1.8]]])
          >>> r = RangeTestResult.from_parallel([0.1], losses, losses, -np.ones((1, 1), int), 4.0)
          >>> r.status.tolist(), r.diagnose(slow=0.2).tolist()
          (['good'], ['slow'])
        """
        th = Thresholds(**thresholds)
        if self.mode == "parallel":
            return diagnose_curves(np.mean(self.losses, axis=0), self.diverged, th)
        return diagnose_sweep(self.smoothed, self.stop_step, th)

    # ------------------------------------------------------------------ I/O

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (``json.dumps`` works); NaN and inf become ``None``."""
        return {
            "mode": self.mode,
            "lrs": _json(self.lrs),
            "losses": _json(self.losses),
            "smoothed": _json(self.smoothed),
            "scores": _json(self.scores),
            "score_std": None if self.score_std is None else _json(self.score_std),
            "diverged": np.asarray(self.diverged).tolist(),
            "status": np.asarray(self.status).tolist(),
            "stop_step": np.asarray(self.stop_step).tolist(),
            "num_steps": int(self.num_steps),
            "diverge_factor": _json_scalar(self.diverge_factor),
            "step_mode": self.step_mode,
            "interrupted": bool(self.interrupted),
            "best_lr": self.best_lr,
            "suggestions": self.suggestions(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RangeTestResult:
        """Rebuilds a result from :meth:`to_dict` output.

        ``None`` becomes NaN in curves and ``inf`` in parallel scores (the only
        non-finite score there is a diverged one).
        """
        if not isinstance(d, dict) or d.get("mode") not in MODES:
            raise ValueError(f"not a RangeTestResult dict (mode must be one of {MODES})")
        bad_score = math.inf if d["mode"] == "parallel" else math.nan
        std = d.get("score_std")
        factor = d.get("diverge_factor")
        return cls(
            mode=d["mode"],
            lrs=_array(d["lrs"], math.nan),
            losses=_array(d["losses"], math.nan, np.float32),
            smoothed=_array(d["smoothed"], math.nan, np.float32),
            scores=_array(d["scores"], bad_score),
            score_std=None if std is None else _array(std, math.inf),
            diverged=np.asarray(d["diverged"], bool),
            status=np.asarray(d["status"], str),
            stop_step=np.asarray(d["stop_step"]) if d["mode"] == "parallel" else d["stop_step"],
            num_steps=int(d["num_steps"]),
            diverge_factor=math.inf if factor is None else float(factor),
            step_mode=d.get("step_mode"),
            interrupted=bool(d.get("interrupted", False)),
        )

    def __repr__(self) -> str:
        n = self.lrs.size
        counts = {
            s: int(np.sum(self.status == s)) for s in ("good", "slow", "unstable", "diverged")
        }
        best = self.best_lr
        best_s = "None" if best is None else f"{best:.3g}"
        what = "rates" if self.mode == "parallel" else "steps"
        return (
            f"RangeTestResult(mode={self.mode!r}, {n} {what} in "
            f"[{self.lrs.min():.3g}, {self.lrs.max():.3g}], best_lr={best_s}, status={counts})"
        )

    # ---------------------------------------------------------------- plots

    def plot(self, ax: Any = None, suggestions: Sequence[str] | None = None):
        """Loss vs rate (log x), with the suggestions and the diverged region.

        Parallel: the score per rate, a band of +-1 std across seeds when
        ``seeds > 1``, diverged rates shaded. Sweep: the smoothed loss along the
        ramp (raw loss faint), the part after the stop shaded.

        Args:
          ax: a matplotlib Axes to draw on (a new figure if ``None``).
          suggestions: methods to mark (default: all that apply).

        Returns:
          The matplotlib Figure.
        """
        from lrjax.plotting import figure_and_axes

        fig, ax = figure_and_axes(ax, (6.5, 4))
        lrs = self.lrs
        if self.mode == "parallel":
            ok = np.isfinite(self.scores)
            ax.plot(lrs[ok], self.scores[ok], "o-", ms=3, color="C0", label="score (last 10%)")
            if self.losses.shape[0] > 1 and ok.any():
                mid, std = self.scores[ok], self.score_std[ok]
                ax.fill_between(
                    lrs[ok], mid - std, mid + std, color="C0", alpha=0.2, label="±1 std"
                )
            ref = float(np.nanmean(self.losses[:, :, 0]))
            values = self.scores[ok]
            ylabel = f"mean loss, last {score_window(self.num_steps)} steps"
        else:
            stop = self.num_steps if self.stop_step < 0 else self.stop_step + 1
            ax.plot(lrs[:stop], self.losses[:stop], color="C0", alpha=0.25, lw=0.8, label="loss")
            ax.plot(lrs[:stop], self.smoothed[:stop], color="C0", label="smoothed")
            ref = float(self.smoothed[0])
            values = np.concatenate([self.smoothed[:stop], self.losses[:stop]])
            ylabel = "loss"
        self._shade_diverged(ax)
        methods = _suggest.METHODS if suggestions is None else tuple(suggestions)
        for i, m in enumerate(methods):
            try:
                lr, (px, py) = self._suggestion(m)
            except ValueError:
                if suggestions is not None:
                    raise
                continue
            # fastai marks `minimum` at the lowest point, though it suggests a tenth of it.
            note = f" (marker at {px:.2g})" if not np.isclose(px, lr) else ""
            label = f"{m}: {lr:.2g}{note}"
            ax.plot([px], [py], "o", ms=8, color=f"C{i + 1}", label=label, zorder=5)
        _clip_ylim(ax, values, ref)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        ax.set_title(f"learning-rate range test ({self.mode})", fontsize=10)
        return fig

    def _shade_diverged(self, ax: Any) -> None:
        lrs = self.lrs
        if self.mode == "sweep":
            if self.stop_step >= 0:
                ax.axvspan(lrs[self.stop_step], lrs.max(), color="red", alpha=0.1, label="diverged")
            return
        edges = np.sqrt(lrs[1:] * lrs[:-1]) if lrs.size > 1 else np.array([])
        left = np.concatenate([[lrs[0] / 1.2], edges])
        right = np.concatenate([edges, [lrs[-1] * 1.2]])
        first = True
        k = 0
        while k < lrs.size:
            if not self.diverged[k]:
                k += 1
                continue
            j = k
            while j + 1 < lrs.size and self.diverged[j + 1]:
                j += 1
            ax.axvspan(
                left[k], right[j], color="red", alpha=0.1, label="diverged" if first else None
            )
            first = False
            k = j + 1

    def plot_curves(self, ax: Any = None):
        """Training curves: loss vs step for each rate, coloured by rate.

        Parallel: one line per rate (the mean over seeds), diverged rates dashed,
        with a log-scaled colour bar. Sweep: the raw and smoothed loss vs step.

        Returns:
          The matplotlib Figure.
        """
        from lrjax.plotting import figure_and_axes, require_matplotlib

        plt = require_matplotlib()
        from matplotlib.colors import LogNorm

        fig, ax = figure_and_axes(ax, (6.5, 4))
        steps = np.arange(self.num_steps)
        if self.mode == "parallel":
            norm = LogNorm(vmin=self.lrs.min(), vmax=max(self.lrs.max(), self.lrs.min() * 1.0001))
            cmap = plt.get_cmap("viridis")
            with warnings.catch_warnings():  # all-NaN steps after a divergence
                warnings.simplefilter("ignore", RuntimeWarning)
                curves = np.nanmean(self.losses, axis=0)
            for k, lr in enumerate(self.lrs):
                ax.plot(
                    steps,
                    curves[k],
                    color=cmap(norm(lr)),
                    lw=1.0,
                    ls="--" if self.diverged[k] else "-",
                )
            sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
            fig.colorbar(sm, ax=ax, label="learning rate")
            ref = float(np.nanmean(self.losses[:, :, 0]))
            finite = curves[np.isfinite(curves)]
        else:
            ax.plot(steps, self.losses, color="C0", alpha=0.3, lw=0.8, label="loss")
            ax.plot(steps, self.smoothed, color="C0", label="smoothed")
            ax.legend(fontsize=8)
            ref = float(self.smoothed[0])
            finite = self.losses[np.isfinite(self.losses)]
        _clip_ylim(ax, finite, ref)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.grid(alpha=0.3)
        ax.set_title(f"training curves ({self.mode})", fontsize=10)
        return fig


def _clip_ylim(ax: Any, values: np.ndarray, ref: float) -> None:
    """Keeps blow-ups from squashing the plot: the top is at most 3x the initial loss."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if not values.size or not (math.isfinite(ref) and ref > 0) or values.max() <= 3 * ref:
        return
    lo, hi = values.min(), 3 * ref
    pad = 0.05 * (hi - lo)
    ax.set_ylim(lo - pad, hi + pad)


def parallel_scores(
    losses: np.ndarray, stop_step: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scores, score_std, diverged)`` per rate from ``[seeds, K, T]`` losses."""
    T = losses.shape[-1]
    w = score_window(T)
    seed_div = np.asarray(stop_step) >= 0
    with np.errstate(invalid="ignore"):
        per_seed = np.where(seed_div, np.inf, losses[..., T - w :].astype(np.float64).mean(-1))
    diverged = seed_div.any(axis=0)
    scores = np.where(diverged, np.inf, per_seed.mean(axis=0))
    std = np.where(diverged, np.inf, np.where(diverged, 0.0, per_seed).std(axis=0))
    return scores, std, diverged


def _json(x: Any) -> Any:
    a = np.asarray(x, dtype=np.float64)
    out = np.where(np.isfinite(a), a, np.nan).astype(object)
    out[~np.isfinite(a)] = None
    return out.tolist()


def _json_scalar(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _array(x: Any, fill: float, dtype: Any = np.float64) -> np.ndarray:
    def conv(v):
        if isinstance(v, list):
            return [conv(e) for e in v]
        return fill if v is None else v

    return np.asarray(conv(x), dtype=dtype)
