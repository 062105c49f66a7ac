"""`SweepResult`: the outcome of training a grid of settings side by side.

The parallel range test is a grid with one axis, ``lr``: its result
(:class:`lrjax.RangeTestResult`) extends this class with suggestions and plots.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Protocol

import numpy as np

from lrjax._results import _plots
from lrjax._results._diagnose import DEFAULT, Thresholds, diagnose_curves
from lrjax._results._score import copy_scores, score_label


class RunOutputs(Protocol):
    """What a run hands the results (the engine's ``EngineResult``, as host arrays):
    curves ``[seeds, K, num_steps]``, stop steps ``[seeds, K]``, how many copies
    finished of how many, and the optional outputs."""

    losses: np.ndarray
    smoothed: np.ndarray
    stop_step: np.ndarray
    completed: int
    expected: int
    aux: Any
    val_losses: np.ndarray | None
    val_curves: np.ndarray | None
    params: Any
    state: Any
    strategy: str
    data_passes: int | None
    take_copy: Any  # (tree, seed, index) -> one copy of params or state, as the user gave it


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
      strategy: how the engine ran the steps: ``"scan"`` (one compiled loop),
        ``"blocks"`` (straight-line blocks dispatched from Python) or
        ``"sequential"`` (as ``"blocks"``, one copy at a time); see
        :func:`lrjax.range_test`.
      data_passes: how many times the batches were read from their start: a
        re-iterable source (a list, a ``DataLoader``) shorter than the run is
        read again, epoch after epoch; 1 for stacked arrays, ``None`` for a
        callable.
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
    data_passes: int | None = None
    take_copy: Any = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_run(
        cls,
        grid: dict[str, np.ndarray],
        out: RunOutputs,
        diverge_factor: float,
        *,
        shape: tuple[int, ...] | None = None,
        combine: str = "zip",
        eval_every: int | None = None,
    ) -> SweepResult:
        """The result of training the settings ``grid`` (``{name: [K]}``) with the engine.

        Settings past an interruption are left out; ``shape`` is the grid's
        (``(K,)`` by default).
        """
        return cls(
            names=tuple(grid),
            grid={k: v[: out.completed] for k, v in grid.items()},
            shape=(out.completed,) if shape is None else shape,
            combine=combine,
            **cls._fields_from(out, diverge_factor, eval_every),
        )

    @classmethod
    def _fields_from(
        cls,
        out: RunOutputs,
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
            "data_passes": out.data_passes,
            "take_copy": getattr(out, "take_copy", None),
        }

    @property
    def score_label(self) -> str:
        """What :attr:`scores` measure, for tables and axes."""
        return score_label(self.val_losses is not None, self.num_steps)

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
        return self.take_copy(tree, 0, i)

    def status_counts(self) -> dict[str, int]:
        """How many settings have each status, ``{"good": n, "slow": n, ...}``."""
        return {s: int(np.sum(self.status == s)) for s in STATUSES}

    def __repr__(self) -> str:
        """A short summary: the grid, the best setting and score, the statuses."""
        grid = " x ".join(f"{n} ({k})" for n, k in zip(self.names, self.shape))
        if len(self.shape) != len(self.names):  # zip: every name has N values
            grid = f"{', '.join(self.names)} zipped"
        best = self.best
        best_s = "None" if best is None else summarize_values(best)
        i = self.best_index
        score = "" if i is None else f", best score={self.scores[i]:.4g} ({self.score_label})"
        return (
            f"SweepResult({self.scores.size} settings: {grid}, {self.num_steps} steps, "
            f"{self.losses.shape[0]} seed(s), best={best_s}{score}, "
            f"status={self.status_counts()}, strategy={self.strategy!r})"
        )

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
            "data_passes": self.data_passes,
            "best": self.best,
        }

    def plot(self, ax: Any = None):
        """Score vs the first hyperparameter, one line per value of the second.

        The x axis is log-scaled (its label says so) where every value is
        positive and they span more than a decade; the score axis is linear.
        Diverged settings are left out; a star marks the best.

        Returns:
          The matplotlib Figure.
        """
        return _plots.sweep_plot(self, ax)


STATUSES = ("good", "slow", "unstable", "diverged")


def summarize_values(values: dict[str, Any]) -> str:
    """``{'lr': 0.0215, 'momentum': 0.9}``: floats to 3 significant digits."""
    parts = []
    for k, v in values.items():
        text = f"{v:.3g}" if isinstance(v, (float, np.floating)) else repr(v)
        parts.append(f"{k!r}: {text}")
    return "{" + ", ".join(parts) + "}"


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
