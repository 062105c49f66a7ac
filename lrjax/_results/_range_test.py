"""The results of a range test: the parallel grid and the classic ramp.

:class:`RangeTestResult` (the default, parallel test) is a
:class:`lrjax.SweepResult` over one axis, ``lr``, with suggestions and plots.
:class:`RampResult` (:func:`lrjax.lr_find`) is the single run along a ramp of rates.
Each field means one thing in each class.
"""

from __future__ import annotations

import dataclasses
import math
import types
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from lrjax._results import _plots, _suggest
from lrjax._results._diagnose import DEFAULT, Thresholds, diagnose_curves, diagnose_ramp
from lrjax._results._sweep import RunOutputs, SweepResult, from_json, json_scalar, to_json
from lrjax._rules import scale_to_run, score_window

#: The ``"mode"`` :meth:`RangeTestResult.to_dict` and :meth:`RampResult.to_dict` write.
MODES = ("parallel", "ramp")
#: Older spellings of a mode that ``from_dict`` still reads (files saved before
#: the ramp was named ``"ramp"``).
OLD_MODES = {"sweep": "ramp"}

#: With validation data, ``suggest()`` answers for a run this many times as long
#: as the test (``suggest_for(DEFAULT_BUDGET * num_steps)``).
DEFAULT_BUDGET = 3


def _mode(d: dict[str, Any]) -> Any:
    """A saved result's ``"mode"``, old spellings read as today's."""
    mode = d.get("mode")
    return OLD_MODES.get(mode, mode) if isinstance(mode, str) else mode


class _Suggestions:
    """Suggestions read off :meth:`curve`, shared by both kinds of result."""

    #: The method ``suggest()`` uses when none is named.
    default_method: ClassVar[str]
    #: The methods this kind of result offers.
    methods: ClassVar[tuple[str, ...]]

    def curve(self) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _why_empty(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def suggestion(self, method: str | None = None, **kwargs: Any) -> _suggest.Suggestion:
        """``(rate, (x, y))``: the rate ``method`` suggests (default: :attr:`default_method`)
        and the point of the curve it marks (fastai's ``minimum`` marks the lowest
        point, though it suggests a tenth of it); :meth:`suggest` is its rate."""
        method = self.default_method if method is None else method
        if method not in self.methods:
            raise ValueError(f"method must be one of {list(self.methods)}, got {method!r}")
        lrs, losses = self.curve()
        if lrs.size == 0:
            raise ValueError(f"no usable points for a suggestion: {self._why_empty()}")
        return _suggest.suggest(method, lrs, losses, **kwargs)

    def suggestions(self) -> dict[str, float | None]:
        """Every method's rate (``None`` where the curve is too short)."""
        out: dict[str, float | None] = {}
        for m in self.methods:
            try:
                out[m] = self.suggestion(m)[0]
            except ValueError:
                out[m] = None
        return out


def _mean_fraction(schedule: Any, total_steps: int) -> float:
    """A schedule's mean over ``[0, total_steps)`` as a fraction of its largest value."""
    if not callable(schedule):
        raise TypeError(f"schedule must be a callable step -> rate, got {schedule!r}")
    try:  # lrjax and Optax schedules take an array of steps (elementwise)
        values = np.asarray(schedule(np.arange(total_steps)), np.float64)
        if values.shape != (total_steps,):
            raise ValueError("not elementwise")
    except Exception:
        # a Python `if` on the step, or one value for any input: step by step
        try:
            values = np.array([float(schedule(i)) for i in range(total_steps)])
        except Exception as e:
            raise ValueError(
                f"schedule could not be evaluated at steps 0..{total_steps - 1} "
                f"({type(e).__name__}: {str(e)[:80]}); pass a callable step -> rate such as "
                "lrjax.cosine(1.0, total_steps)"
            ) from None
    peak = values.max() if values.size else math.nan
    if values.shape != (total_steps,) or not np.isfinite(values).all() or not peak > 0:
        raise ValueError(
            f"schedule must give one finite rate per step with a positive peak over "
            f"[0, {total_steps}), got values in [{values.min():.3g}, {peak:.3g}]"
        )
    return float(values.mean() / peak)


@dataclasses.dataclass(frozen=True, eq=False)
class RangeTestResult(_Suggestions, SweepResult):
    """The outcome of the parallel :func:`lrjax.range_test`: a grid over ``lr``.

    Every field of :class:`lrjax.SweepResult`, with ``names == ("lr",)``; the
    ``K`` rates are :attr:`lrs`. ``losses`` is ``[seeds, K, num_steps]``,
    ``scores`` ``[K]`` (the validation loss with ``val_batches``, else the mean
    training loss over the last 10% of steps), ``stop_step`` ``[seeds, K]``.
    """

    mode: ClassVar[str] = "parallel"
    methods: ClassVar[tuple[str, ...]] = ("best", "near_best", "budget", *_suggest.METHODS)

    @property
    def default_method(self) -> str:  # type: ignore[override]
        """What ``suggest()`` does: ``"budget"`` with validation data, else ``"near_best"``."""
        return "budget" if self.val_losses is not None else "near_best"

    # ---------------------------------------------------------------- build

    @classmethod
    def from_engine(
        cls,
        lrs: np.ndarray,
        out: RunOutputs,
        diverge_factor: float,
        eval_every: int | None = None,
        thresholds: Thresholds = DEFAULT,
    ) -> RangeTestResult:
        """Builds the result from the engine's ``[seeds, K, T]`` outputs."""
        lrs = np.asarray(lrs, np.float64)[: out.completed]
        return cls(
            names=("lr",),
            grid={"lr": lrs},
            shape=(lrs.size,),
            **cls._fields_from(out, diverge_factor, eval_every, thresholds),
        )

    @classmethod
    def from_parallel(
        cls,
        lrs: Any,
        losses: np.ndarray,
        smoothed: np.ndarray,
        stop_step: np.ndarray,
        diverge_factor: float,
        interrupted: bool = False,
        thresholds: Thresholds = DEFAULT,
    ) -> RangeTestResult:
        """Builds a result from ``[seeds, K, T]`` training curves (no evaluation)."""
        losses = np.asarray(losses)
        out = types.SimpleNamespace(
            losses=losses,
            smoothed=np.asarray(smoothed),
            stop_step=np.asarray(stop_step),
            completed=losses.shape[1],
            expected=losses.shape[1] + int(interrupted),
            aux=None,
            val_losses=None,
            val_curves=None,
            params=None,
            state=None,
            strategy="scan",
            data_passes=None,
        )
        return cls.from_engine(lrs, out, diverge_factor, None, thresholds)

    @property
    def lrs(self) -> np.ndarray:
        """The ``K`` rates, increasing."""
        return self.grid["lr"]

    def suggestion(self, method: str | None = None, **kwargs: Any) -> _suggest.Suggestion:
        """``(rate, (x, y))``: the suggested rate and the point of the curve it marks."""
        method = self.default_method if method is None else method
        if method not in ("best", "budget"):
            return super().suggestion(method, **kwargs)
        if kwargs:
            raise TypeError(f"suggestion {method!r} takes no options, got {sorted(kwargs)}")
        if method == "budget" and self.val_losses is None:
            raise ValueError(
                "suggest('budget') scales the best validation rate: pass val_batches to "
                "range_test (without validation data use 'near_best', or suggest_for)"
            )
        i = self.best_index
        if i is None:
            raise ValueError(f"no usable points for a suggestion: {self._why_empty()}")
        if method == "budget":
            lr = self.suggest_for(DEFAULT_BUDGET * self.num_steps)
            lrs, scores = self.curve()
            return lr, (lr, float(np.interp(np.log(lr), np.log(lrs), scores)))
        return float(self.lrs[i]), (float(self.lrs[i]), float(self.scores[i]))

    # ---------------------------------------------------------- suggestions

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The rates before the first diverged one and their scores."""
        bad = np.flatnonzero(self.diverged | ~np.isfinite(self.scores))
        end = int(bad[0]) if bad.size else self.lrs.size
        return self.lrs[:end], np.asarray(self.scores[:end], np.float64)

    def _why_empty(self) -> str:
        stop = np.asarray(self.stop_step)
        if stop.size and np.all(stop == 0):
            return (
                "the loss is not finite at the initial params on the first batch "
                "(every rate stopped at step 0); check params, batches and loss_fn"
            )
        return "every rate diverged; lower min_lr"

    def suggest(self, method: str | None = None, **kwargs: Any) -> float:
        """A learning rate suggested from the per-rate scores.

        With no ``method``, the default rule:

        - with ``val_batches``: ``"budget"``, the best validation rate scaled to
          a run three times as long as the test, ``suggest_for(3 * num_steps)``
          (``best_lr / 3``). It is only as good as the validation split it is
          scored on, so hold out as much data as you can. For a known run
          length call :meth:`suggest_for`.
        - without: ``"near_best"``, the smallest rate scoring within 10% of the
          score range of the best. The training loss cannot tell when a small
          set overfits, so hold out a validation split where you can.

        The defaults were chosen on the suggestion benchmark
        (``benchmarks/suggestion_quality.py``: problems other than the demo,
        each rate trained for 3x and 10x the test's length and scored on a
        test split), with problems held out from the choice; how each rule
        scored there is in ``benchmarks/README.md``.

        Args:
          method: ``None`` (the default above), ``"best"`` (the rate with the
            lowest score: the one that trained best over the test, on the
            validation data when there is some), ``"near_best"`` (option
            ``tol=0.1``), ``"budget"`` (needs ``val_batches``: see above), or
            fastai's rules, made for the ramp (:func:`lrjax.lr_find`) and acting on the score
            curve here: ``"valley"``, ``"minimum"`` (a tenth of the best rate),
            ``"steep"`` and ``"slide"`` (options ``lr_diff=15``,
            ``thresh=0.005``, ``adjust_value=1.0``).
          **kwargs: options of ``near_best`` and ``slide``.

        Returns:
          The suggested rate.

        Raises:
          ValueError: unknown method, or no usable points (every rate diverged).

        Example:
          >>> import numpy as np
          >>> from lrjax import RangeTestResult
          >>> lrs = np.logspace(-4, 0, 5)
          >>> losses = np.array([[[2.3, 2.2], [2.3, 1.5], [2.3, 0.45], [2.3, 0.4], [2.3, 2.3]]])
          >>> r = RangeTestResult.from_parallel(lrs, losses, losses, -np.ones((1, 5), int), 4.0)
          >>> float(r.suggest("best")), float(r.suggest()), float(r.suggest("minimum"))
          (0.1, 0.01, 0.01)
        """
        return self.suggestion(method, **kwargs)[0]

    @property
    def best_lr(self) -> float | None:
        """The rate with the lowest score (``None`` when every rate diverged)."""
        i = self.best_index
        return None if i is None else float(self.lrs[i])

    @property
    def interval(self) -> tuple[float, float] | None:
        """The rates statistically indistinguishable from :attr:`best_lr`.

        With ``seeds > 1``: the contiguous run of rates around the best whose
        score differs from the best score by at most their combined spread
        over seeds, ``sqrt(std_k**2 + std_best**2)``. ``None`` with one seed
        (no spread to judge by) or when every rate diverged.

        Example:
          >>> import numpy as np
          >>> from lrjax import RangeTestResult
          >>> end = np.array([[1.0, 0.50, 0.45, 0.47, 0.9], [1.0, 0.56, 0.47, 0.45, 0.9]])
          >>> losses = np.repeat(end[:, :, None], 2, axis=2)  # [seeds, K, T]
          >>> r = RangeTestResult.from_parallel(np.logspace(-3, 1, 5), losses, losses,
          ...                                   -np.ones((2, 5), int), 4.0)
          >>> [round(float(x), 3) for x in r.interval]
          [0.1, 1.0]
        """
        i = self.best_index
        if i is None or self.losses.shape[0] < 2:
            return None
        spread = np.sqrt(self.score_std**2 + self.score_std[i] ** 2)
        close = np.isfinite(self.scores) & (self.scores - self.scores[i] <= spread)
        lo = hi = i
        while lo > 0 and close[lo - 1]:
            lo -= 1
        while hi + 1 < close.size and close[hi + 1]:
            hi += 1
        return float(self.lrs[lo]), float(self.lrs[hi])

    def best_at(self, steps: int) -> float | None:
        """The rate with the lowest training loss after ``steps`` steps (``<= num_steps``).

        The score at a horizon ``h`` is the mean loss over steps
        ``[h - max(1, h // 10), h)``, averaged over seeds; a copy that diverged
        by then is out.
        """
        h = int(steps)
        if not 1 <= h <= self.num_steps:
            raise ValueError(f"steps must be in [1, {self.num_steps}], got {steps!r}")
        w = score_window(h)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            window = self.losses[:, :, h - w : h].astype(np.float64).mean(-1)
        out = np.any((self.stop_step >= 0) & (self.stop_step < h), axis=0)
        score = np.where(out | ~np.isfinite(window).all(0), np.inf, window.mean(0))
        return None if not np.isfinite(score).any() else float(self.lrs[np.argmin(score)])

    def suggest_for(self, total_steps: int, schedule: Any = None) -> float:
        """The rate for a real run of ``total_steps`` steps, constant or on a schedule.

        ``best_lr * min(1, num_steps / total_steps)``: the best constant rate
        falls as the run gets longer, about in proportion. Within the test's
        length (``total_steps <= num_steps``) and without validation data the
        answer is measured instead: :meth:`best_at`, the best training rate at
        that horizon (with validation data, which is scored only at the end,
        it is ``best_lr``).

        With ``schedule`` (the run's schedule at any scale, e.g.
        ``lrjax.cosine(1.0, total_steps)``) the answer is the schedule's peak:
        the constant rate above divided by the schedule's mean over the run
        relative to its peak, so that the run's mean rate matches it (twice
        the constant rate for a cosine decay to zero).

        The factor and the schedule rule were chosen on the suggestion
        benchmarks (``benchmarks/suggestion_quality.py`` and
        ``benchmarks/suggestion_schedules.py``: runs of 3x and 10x the test,
        constant and on cosine, one-cycle and warmup + cosine schedules,
        with problems held out from the choice); how they and the
        alternatives (``best_lr`` as the peak, fastai's ``valley``, slopes
        fitted over the test) scored is in ``benchmarks/README.md``.

        Args:
          total_steps: the length of the real run, >= 1.
          schedule: ``None`` (a constant rate), or a callable ``step -> rate``
            giving the shape of the run's rate (an lrjax or Optax schedule);
            only its values relative to its largest one over
            ``[0, total_steps)`` matter.

        Returns:
          The suggested rate (with ``schedule``: its peak).

        Raises:
          ValueError: ``total_steps`` < 1, every rate diverged, or
            ``schedule`` gives a rate that is not finite or no positive one.
          TypeError: ``schedule`` is not callable.

        Example:
          >>> import numpy as np
          >>> from lrjax import RangeTestResult
          >>> lrs = np.logspace(-4, 0, 5)
          >>> losses = np.array([[[2.3, 2.2], [2.3, 1.5], [2.3, 0.45], [2.3, 0.4], [2.3, 2.3]]])
          >>> r = RangeTestResult.from_parallel(lrs, losses, losses, -np.ones((1, 5), int), 4.0)
          >>> round(r.suggest_for(20), 6)  # ten times the test's 2 steps
          0.01
          >>> import lrjax  # a cosine decay's mean is about half its peak
          >>> round(r.suggest_for(20, schedule=lrjax.cosine(1.0, 20)), 4)
          0.019
        """
        if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)):
            raise TypeError(f"total_steps must be an int >= 1, got {total_steps!r}")
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps!r}")
        mean_fraction = 1.0 if schedule is None else _mean_fraction(schedule, int(total_steps))
        if self.best_index is None:
            raise ValueError(f"no usable points for a suggestion: {self._why_empty()}")
        if total_steps <= self.num_steps and self.val_losses is None:
            best = self.best_at(int(total_steps))
            if best is not None:
                return best / mean_fraction
        return scale_to_run(self.best_lr, self.num_steps, total_steps) / mean_fraction

    def diagnose(self, **thresholds: float) -> np.ndarray:
        """Re-labels the rates with other thresholds (see :class:`lrjax.Thresholds`).

        Example:
          >>> import numpy as np
          >>> from lrjax import RangeTestResult
          >>> losses = np.array([[[2.0, 1.9, 1.85, 1.8]]])
          >>> r = RangeTestResult.from_parallel([0.1], losses, losses, -np.ones((1, 1), int), 4.0)
          >>> r.status.tolist(), r.diagnose(slow=0.2).tolist()
          (['good'], ['slow'])
        """
        return diagnose_curves(
            np.mean(self.losses, axis=0), self.diverged, Thresholds(**thresholds)
        )

    # ------------------------------------------------------------------ I/O

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (``json.dumps`` works); NaN and inf become ``None``."""
        return {
            "mode": self.mode,
            "lrs": to_json(self.lrs),
            "losses": to_json(self.losses),
            "smoothed": to_json(self.smoothed),
            "scores": to_json(self.scores),
            "score_std": to_json(self.score_std),
            "diverged": np.asarray(self.diverged).tolist(),
            "status": np.asarray(self.status).tolist(),
            "stop_step": np.asarray(self.stop_step).tolist(),
            "num_steps": int(self.num_steps),
            "diverge_factor": json_scalar(self.diverge_factor),
            "interrupted": bool(self.interrupted),
            "val_losses": None if self.val_losses is None else to_json(self.val_losses),
            "val_curves": None if self.val_curves is None else to_json(self.val_curves),
            "eval_every": self.eval_every,
            "data_passes": self.data_passes,
            "best_lr": self.best_lr,
            "suggestions": self.suggestions(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RangeTestResult | RampResult:
        """Rebuilds a result from :meth:`to_dict` output (a :class:`RampResult`
        for a ramp, ``"mode": "ramp"``).

        ``None`` becomes NaN in curves and ``inf`` in scores (the only
        non-finite score is a diverged one).
        """
        if not isinstance(d, dict) or _mode(d) not in MODES:
            raise ValueError(f"not a RangeTestResult dict (mode must be one of {MODES})")
        if _mode(d) == RampResult.mode:
            return RampResult.from_dict(d)
        lrs = from_json(d["lrs"], math.nan)
        factor = d.get("diverge_factor")
        val, curves = d.get("val_losses"), d.get("val_curves")
        return cls(
            names=("lr",),
            grid={"lr": lrs},
            shape=(lrs.size,),
            losses=from_json(d["losses"], math.nan, np.float32),
            smoothed=from_json(d["smoothed"], math.nan, np.float32),
            scores=from_json(d["scores"], math.inf),
            score_std=from_json(d["score_std"], math.inf),
            diverged=np.asarray(d["diverged"], bool),
            status=np.asarray(d["status"], str),
            stop_step=np.asarray(d["stop_step"]),
            num_steps=int(d["num_steps"]),
            diverge_factor=math.inf if factor is None else float(factor),
            interrupted=bool(d.get("interrupted", False)),
            val_losses=None if val is None else from_json(val, math.nan, np.float32),
            val_curves=None if curves is None else from_json(curves, math.nan, np.float32),
            eval_every=d.get("eval_every"),
            data_passes=d.get("data_passes"),
        )

    def __repr__(self) -> str:
        """A short summary: the rates, the best rate, the statuses (arrays as attributes)."""
        best = self.best_lr
        best_s = "None" if best is None else f"{best:.3g}"
        return (
            f"RangeTestResult({self.lrs.size} rates in [{self.lrs.min():.3g}, "
            f"{self.lrs.max():.3g}], best_lr={best_s}, status={self.status_counts()}, "
            f"strategy={self.strategy!r})"
        )

    # ---------------------------------------------------------------- plots

    def plot(self, ax: Any = None, suggestions: Sequence[str] | None = None):
        """Score vs rate (log x): the suggested rate first, diverged rates shaded.

        The score per rate (the validation loss when there is one, with the
        training score faint beside it), a band of +-1 std across seeds when
        ``seeds > 1``, the rates as good as the best over seeds shaded, a star
        at the suggested rate (``suggest()``'s rule) and a circle at ``best``.

        Args:
          ax: a matplotlib Axes to draw on (a new figure if ``None``).
          suggestions: methods to mark, the first as the suggestion (default:
            the default rule, then ``"best"``; fastai's ``"valley"``,
            ``"minimum"``, ``"steep"``, ``"slide"`` on request).

        Returns:
          The matplotlib Figure.
        """
        return _plots.range_test_plot(self, ax, suggestions)

    def plot_curves(self, ax: Any = None):
        """Training curves: loss vs step for each rate (mean over seeds), coloured by
        rate on a log colour bar, diverged rates dashed.

        Returns:
          The matplotlib Figure.
        """
        return _plots.range_test_plot_curves(self, ax)


@dataclasses.dataclass(frozen=True, eq=False)
class RampResult(_Suggestions):
    """The outcome of :func:`lrjax.lr_find`: one run along a ramp of rates.

    Attributes:
      lrs: the rate used at each step.
      losses: ``[num_steps]`` raw training loss, NaN after the stop.
      smoothed: the debiased EMA (beta 0.98) of ``losses``: the curve the
        suggestions use.
      diverged: ``[num_steps]`` bool, ``True`` from the stop on.
      status: ``[num_steps]`` labels ``diverged``, ``unstable``, ``slow``, ``good``.
      stop_step: the step at which the ramp stopped, or ``-1``.
      num_steps: steps of the ramp.
      diverge_factor: the divergence threshold used.
      step_mode: ``"exp"`` or ``"linear"``.
      data_passes: how many times the batches were read from their start (a
        re-iterable source shorter than the ramp is read again, epoch after
        epoch; 1 for stacked arrays, ``None`` for a callable).
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    diverged: np.ndarray
    status: np.ndarray
    stop_step: int
    num_steps: int
    diverge_factor: float
    step_mode: str = "exp"
    data_passes: int | None = None

    mode: ClassVar[str] = "ramp"
    default_method: ClassVar[str] = "valley"
    methods: ClassVar[tuple[str, ...]] = _suggest.METHODS

    @classmethod
    def from_curves(
        cls,
        lrs: np.ndarray,
        losses: np.ndarray,
        smoothed: np.ndarray,
        stop_step: int,
        diverge_factor: float,
        step_mode: str,
        thresholds: Thresholds = DEFAULT,
        data_passes: int | None = None,
    ) -> RampResult:
        """Builds a ramp result from ``[T]`` curves."""
        T = losses.shape[-1]
        stop = int(stop_step)
        return cls(
            lrs=np.asarray(lrs, np.float64),
            losses=losses,
            smoothed=smoothed,
            diverged=np.arange(T) >= (T if stop < 0 else stop),
            status=diagnose_ramp(smoothed, stop, thresholds),
            stop_step=stop,
            num_steps=T,
            diverge_factor=float(diverge_factor),
            step_mode=step_mode,
            data_passes=data_passes,
        )

    @property
    def scores(self) -> np.ndarray:
        """The smoothed loss at each step (float64; NaN after the stop)."""
        return np.asarray(self.smoothed, np.float64)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """As fastai's ``lr_find``: the smoothed loss, skipping the first
        ``num_steps // 10`` steps and the last 5 recorded before the stop, cut at
        the first non-finite value."""
        recorded = self.num_steps if self.stop_step < 0 else self.stop_step + 1
        lo, hi = self.num_steps // 10, max(recorded - 5, 0)
        lrs = self.lrs[lo:hi]
        losses = np.asarray(self.smoothed[lo:hi], np.float64)
        bad = np.flatnonzero(~np.isfinite(losses))
        end = int(bad[0]) if bad.size else losses.size
        return lrs[:end], losses[:end]

    def _why_empty(self) -> str:
        return (
            f"the ramp stopped at step {self.stop_step}, too early to read a curve; "
            "lower max_lr or raise num_steps"
        )

    def suggest(self, method: str | None = None, **kwargs: Any) -> float:
        """A learning rate from the smoothed curve, by fastai's rules.

        Args:
          method: ``"valley"`` (default, fastai's), ``"minimum"``, ``"steep"``
            or ``"slide"`` (see :meth:`RangeTestResult.suggest`).
          **kwargs: options of ``slide``.

        Returns:
          The suggested rate.
        """
        return self.suggestion(method, **kwargs)[0]

    @property
    def best_lr(self) -> float | None:
        """The ``valley`` suggestion (``None`` when the ramp stopped too early)."""
        try:
            return self.suggest("valley")
        except ValueError:
            return None

    def diagnose(self, **thresholds: float) -> np.ndarray:
        """Re-labels the steps with other thresholds (see :class:`lrjax.Thresholds`)."""
        return diagnose_ramp(self.smoothed, self.stop_step, Thresholds(**thresholds))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (``json.dumps`` works); NaN and inf become ``None``."""
        return {
            "mode": self.mode,
            "lrs": to_json(self.lrs),
            "losses": to_json(self.losses),
            "smoothed": to_json(self.smoothed),
            "diverged": np.asarray(self.diverged).tolist(),
            "status": np.asarray(self.status).tolist(),
            "stop_step": int(self.stop_step),
            "num_steps": int(self.num_steps),
            "diverge_factor": json_scalar(self.diverge_factor),
            "step_mode": self.step_mode,
            "data_passes": self.data_passes,
            "best_lr": self.best_lr,
            "suggestions": self.suggestions(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RampResult:
        """Rebuilds a ramp result from :meth:`to_dict` output (also one saved
        with the old ``"mode"`` spelling, see :data:`OLD_MODES`)."""
        if not isinstance(d, dict) or _mode(d) != cls.mode:
            raise ValueError(f"not a RampResult dict (mode must be {cls.mode!r})")
        factor = d.get("diverge_factor")
        return cls(
            lrs=from_json(d["lrs"], math.nan),
            losses=from_json(d["losses"], math.nan, np.float32),
            smoothed=from_json(d["smoothed"], math.nan, np.float32),
            diverged=np.asarray(d["diverged"], bool),
            status=np.asarray(d["status"], str),
            stop_step=int(d["stop_step"]),
            num_steps=int(d["num_steps"]),
            diverge_factor=math.inf if factor is None else float(factor),
            step_mode=d.get("step_mode", "exp"),
            data_passes=d.get("data_passes"),
        )

    def __repr__(self) -> str:
        best = self.best_lr
        best_s = "None" if best is None else f"{best:.3g}"
        return (
            f"RampResult({self.num_steps} steps in [{self.lrs.min():.3g}, "
            f"{self.lrs.max():.3g}], stop_step={self.stop_step}, valley={best_s})"
        )

    def plot(self, ax: Any = None, suggestions: Sequence[str] | None = None):
        """The smoothed loss along the ramp (raw loss faint), the part after the stop
        shaded, with fastai's suggestions (default: all that apply).

        Returns:
          The matplotlib Figure.
        """
        return _plots.ramp_plot(self, ax, suggestions)

    def plot_curves(self, ax: Any = None):
        """The raw and smoothed loss vs step.

        Returns:
          The matplotlib Figure.
        """
        return _plots.ramp_plot_curves(self, ax)
