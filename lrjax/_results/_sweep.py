"""`SweepResult`: the outcome of training a grid of settings side by side.

The parallel range test is a grid with one axis, ``lr``: its result
(:class:`lrjax.RangeTestResult`) extends this class with suggestions and plots.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from lrjax._engine import EngineResult
from lrjax._engine._score import copy_scores, score_window
from lrjax._results._diagnose import DEFAULT, Thresholds, diagnose_curves


@dataclasses.dataclass(frozen=True, eq=False)
class SweepResult:
    """The outcome of :func:`lrjax.sweep`.

    Attributes:
      names: the hyperparameter names, in grid order.
      grid: ``{name: [N] array}``, the value of each hyperparameter in each of
        the ``N`` settings (flattened in C order for ``combine="product"``).
      shape: the grid's shape: one length per name (product) or ``(N,)`` (zip).
      losses: ``[seeds, N, num_steps]`` raw training loss, NaN after divergence.
      smoothed: the debiased EMA (beta 0.98) of ``losses``.
      scores: ``[N]``: without evaluation data, the mean training loss over the
        last 10% of steps; with ``val_batches``, the evaluation loss after the
        last step. Averaged over seeds, ``inf`` when diverged.
      score_std: ``[N]`` spread of the score over seeds.
      diverged: ``[N]`` bool (any seed diverged).
      status: ``[N]`` ``diverged`` / ``unstable`` / ``slow`` / ``good`` from
        each training curve (see :class:`lrjax.Thresholds`).
      stop_step: ``[seeds, N]`` step at which each copy diverged, ``-1`` if never.
      num_steps: steps per copy.
      combine: ``"product"`` or ``"zip"``.
      diverge_factor: the divergence threshold used (``inf``: only non-finite losses).
      interrupted: a ``KeyboardInterrupt`` cut the run: only the first settings
        are here.
      val_losses: ``[seeds, N]`` evaluation loss after the last step (NaN where
        diverged), or ``None`` without ``val_batches``.
      val_curves: ``[seeds, N, num_steps // eval_every]`` evaluation loss every
        ``eval_every`` steps, or ``None``.
      eval_every: the evaluation interval, or ``None``.
      aux: with ``has_aux=True``, the aux pytree stacked ``[seeds, N, num_steps, ...]``
        (float leaves NaN after divergence).
      params: with ``return_params=True``, each copy's final parameters stacked
        ``[seeds, N, ...]`` (a diverged copy's are those of its stop step; for
        an NNX model, its ``nnx.Param`` state).
      state: with ``return_params=True``, each copy's final model state stacked
        ``[seeds, N, ...]``: BatchNorm statistics and RNG state for Flax models,
        ``state=`` for a plain stateful model, ``()`` for a plain one.
      strategy: how the engine ran the steps: ``"scan"`` (one compiled loop) or
        ``"blocks"`` (straight-line blocks dispatched from Python); see
        :func:`lrjax.range_test`.
    """

    names: tuple[str, ...]
    grid: dict[str, np.ndarray]
    shape: tuple[int, ...]
    losses: np.ndarray
    smoothed: np.ndarray
    scores: np.ndarray
    score_std: np.ndarray
    diverged: np.ndarray
    status: np.ndarray
    stop_step: np.ndarray
    num_steps: int
    combine: str = "product"
    diverge_factor: float = 4.0
    interrupted: bool = False
    val_losses: np.ndarray | None = None
    val_curves: np.ndarray | None = None
    eval_every: int | None = None
    aux: Any = None
    params: Any = None
    state: Any = None
    strategy: str = "scan"

    @classmethod
    def _fields_from(
        cls,
        out: EngineResult,
        diverge_factor: float,
        eval_every: int | None,
        thresholds: Thresholds = DEFAULT,
    ) -> dict[str, Any]:
        """The fields every grid result computes from the engine's outputs."""
        scores, score_std, diverged = copy_scores(out.losses, out.stop_step, out.val_losses)
        return {
            "losses": out.losses,
            "smoothed": out.smoothed,
            "scores": scores,
            "score_std": score_std,
            "diverged": diverged,
            "status": diagnose_curves(np.mean(out.losses, axis=0), diverged, thresholds),
            "stop_step": out.stop_step,
            "num_steps": out.losses.shape[-1],
            "diverge_factor": float(diverge_factor),
            "interrupted": out.completed < out.expected,
            "val_losses": out.val_losses,
            "val_curves": out.val_curves,
            "eval_every": eval_every,
            "aux": out.aux,
            "params": out.params,
            "state": out.state,
            "strategy": out.strategy,
        }

    @property
    def score_label(self) -> str:
        """What :attr:`scores` measure, for tables and axes."""
        if self.val_losses is not None:
            return "validation loss after the last step"
        return f"mean training loss, last {score_window(self.num_steps)} steps"

    @property
    def best_index(self) -> int | None:
        """Index of the setting with the lowest score (``None`` if all diverged)."""
        if not np.isfinite(self.scores).any():
            return None
        return int(np.argmin(np.where(np.isfinite(self.scores), self.scores, np.inf)))

    @property
    def best(self) -> dict[str, float] | None:
        """The setting with the lowest score, ``{name: value}``."""
        i = self.best_index
        if i is None:
            return None
        return {k: self.grid[k][i].item() for k in self.names}

    def best_params(self) -> Any:
        """The best setting's final parameters (first seed); needs ``return_params=True``.

        For an NNX model, rebuild the trained model with its state::

            graphdef = nnx.graphdef(model)
            best = nnx.merge(graphdef, result.best_params(), result.best_state())

        For an Equinox model it is the trained module itself (your class), and
        ``best_state()`` its ``eqx.nn.State``.
        """
        return self._best_copy(self.params, "best_params()")

    def best_state(self) -> Any:
        """The best setting's final model state (first seed): BatchNorm statistics
        and RNG state for Flax models; needs ``return_params=True``."""
        return self._best_copy(self.state, "best_state()")

    def _best_copy(self, tree: Any, what: str) -> Any:
        if tree is None:
            raise ValueError(f"{what} needs the run to be made with return_params=True")
        i = self.best_index
        if i is None:
            raise ValueError(f"every setting diverged: {what} has no best copy")
        import jax

        # ``...``: a 0-d leaf stays an array (NumPy would give a read-only scalar,
        # which a rebuilt NNX model cannot update, e.g. its RNG count). Leaves that
        # are not arrays (an Equinox model's functions and flags) are kept.
        pick = lambda a: a[0, i, ...] if isinstance(a, (np.ndarray, jax.Array)) else a
        return jax.tree.map(pick, tree)

    def scores_grid(self) -> np.ndarray:
        """``scores`` reshaped to :attr:`shape` (needs a complete run)."""
        return self.scores.reshape(self.shape)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON; NaN and inf become ``None`` (``aux``, ``params``, ``state`` left out)."""
        return {
            "names": list(self.names),
            "grid": {k: np.asarray(v).tolist() for k, v in self.grid.items()},
            "shape": list(self.shape),
            "losses": to_json(self.losses),
            "smoothed": to_json(self.smoothed),
            "scores": to_json(self.scores),
            "score_std": to_json(self.score_std),
            "diverged": self.diverged.tolist(),
            "status": self.status.tolist(),
            "stop_step": np.asarray(self.stop_step).tolist(),
            "num_steps": self.num_steps,
            "combine": self.combine,
            "diverge_factor": json_scalar(self.diverge_factor),
            "interrupted": self.interrupted,
            "val_losses": None if self.val_losses is None else to_json(self.val_losses),
            "val_curves": None if self.val_curves is None else to_json(self.val_curves),
            "eval_every": self.eval_every,
            "best": self.best,
        }

    def plot(self, ax: Any = None):
        """Score vs the first hyperparameter, one line per value of the second.

        Axes are log-scaled where every value is positive and they span more
        than a decade. Diverged settings are left out.

        Returns:
          The matplotlib Figure.
        """
        from lrjax.plotting import figure_and_axes

        fig, ax = figure_and_axes(ax, (6.5, 4))
        x = self.grid[self.names[0]].astype(np.float64)
        ok = np.isfinite(self.scores)
        if len(self.names) >= 2:
            other = self.grid[self.names[1]]
            for i, v in enumerate(np.unique(other)):
                sel = (other == v) & ok
                order = np.argsort(x[sel])
                ax.plot(
                    x[sel][order],
                    self.scores[sel][order],
                    "o-",
                    ms=3,
                    color=f"C{i % 10}",
                    label=f"{self.names[1]}={v:.3g}",
                )
            ax.legend(fontsize=8)
        else:
            order = np.argsort(x[ok])
            ax.plot(x[ok][order], self.scores[ok][order], "o-", ms=3)
        pos = x[x > 0]
        if pos.size == x.size and pos.size and pos.max() / pos.min() > 10:
            ax.set_xscale("log")
        best = self.best_index
        if best is not None:
            ax.plot([x[best]], [self.scores[best]], "*", ms=14, color="red", label="best")
        ax.set_xlabel(self.names[0])
        ax.set_ylabel(self.score_label)
        ax.grid(alpha=0.3, which="both")
        return fig


def to_json(x: Any) -> Any:
    """An array as nested lists; NaN and inf become ``None``."""
    a = np.asarray(x, dtype=np.float64)
    out = np.where(np.isfinite(a), a, np.nan).astype(object)
    out[~np.isfinite(a)] = None
    return out.tolist()


def json_scalar(x: float) -> float | None:
    """A float, or ``None`` when it is not finite."""
    return float(x) if math.isfinite(x) else None


def from_json(x: Any, fill: float, dtype: Any = np.float64) -> np.ndarray:
    """Nested lists back to an array; ``None`` becomes ``fill``."""

    def conv(v):
        if isinstance(v, list):
            return [conv(e) for e in v]
        return fill if v is None else v

    return np.asarray(conv(x), dtype=dtype)
