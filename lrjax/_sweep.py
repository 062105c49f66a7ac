"""Vectorized hyperparameter sweeps: every setting of a grid trained side by side.

:func:`sweep` is the general form of the range test: ``make_optimizer`` builds
an Optax transformation from named hyperparameters, and every setting of the
grid is one copy of the model in a single ``jax.jit(jax.vmap(lax.scan))``
(the range test's engine: same divergence freezing, chunking and sharding).
lrjax schedules are pytrees with traceable fields, so a grid over a schedule's
parameters works: ``make_optimizer(max_value, pct_start)`` may return
``optax.adam(lrjax.one_cycle(max_value, total_steps, pct_start=pct_start))``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import optax

from lrjax._range_test import _engine
from lrjax._range_test._adapters import adapt
from lrjax._range_test._diagnose import Thresholds, diagnose_curves
from lrjax._range_test._progress import progress_enabled
from lrjax._range_test._result import _json, parallel_scores, score_window
from lrjax.schedules._base import float_dtype, int_dtype

COMBINE = ("product", "zip")


@dataclasses.dataclass(frozen=True, eq=False)
class SweepResult:
    """The outcome of :func:`sweep`.

    Attributes:
      names: the hyperparameter names, in grid order.
      grid: ``{name: [N] array}``, the value of each hyperparameter in each of
        the ``N`` settings (flattened in C order for ``combine="product"``).
      shape: the grid's shape: one length per name (product) or ``(N,)`` (zip).
      losses: ``[seeds, N, num_steps]`` raw training loss, NaN after divergence.
      smoothed: the debiased EMA (beta 0.98) of ``losses``.
      scores: ``[N]`` mean loss over the last 10% of steps, averaged over seeds,
        ``inf`` when diverged.
      score_std: ``[N]`` spread of the score over seeds.
      diverged: ``[N]`` bool (any seed diverged).
      status: ``[N]`` ``diverged`` / ``unstable`` / ``slow`` / ``good``, as in
        :attr:`lrjax.RangeTestResult.status`.
      stop_step: ``[seeds, N]`` step at which each copy diverged, ``-1`` if never.
      num_steps: steps per copy.
      combine: ``"product"`` or ``"zip"``.
      interrupted: a ``KeyboardInterrupt`` cut the run: only the first settings
        are here.
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
    combine: str
    interrupted: bool = False

    @property
    def best_index(self) -> int | None:
        """Index of the setting with the lowest score (``None`` if all diverged)."""
        if not np.isfinite(self.scores).any():
            return None
        return int(np.argmin(self.scores))

    @property
    def best(self) -> dict[str, float] | None:
        """The setting with the lowest score, ``{name: value}``."""
        i = self.best_index
        if i is None:
            return None
        return {k: self.grid[k][i].item() for k in self.names}

    def scores_grid(self) -> np.ndarray:
        """``scores`` reshaped to :attr:`shape` (needs a complete run)."""
        return self.scores.reshape(self.shape)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON; NaN and inf become ``None``."""
        return {
            "names": list(self.names),
            "grid": {k: np.asarray(v).tolist() for k, v in self.grid.items()},
            "shape": list(self.shape),
            "losses": _json(self.losses),
            "smoothed": _json(self.smoothed),
            "scores": _json(self.scores),
            "score_std": _json(self.score_std),
            "diverged": self.diverged.tolist(),
            "status": self.status.tolist(),
            "stop_step": self.stop_step.tolist(),
            "num_steps": self.num_steps,
            "combine": self.combine,
            "interrupted": self.interrupted,
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
        ax.set_ylabel(f"mean loss, last {score_window(self.num_steps)} steps")
        ax.grid(alpha=0.3, which="both")
        return fig


def _traced_dtype(values: np.ndarray) -> np.dtype:
    return int_dtype() if np.issubdtype(values.dtype, np.integer) else float_dtype()


def _grid_arrays(grid: Any, combine: str) -> tuple[tuple[str, ...], dict[str, np.ndarray], tuple]:
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid must be a non-empty dict of name -> values, got {grid!r}")
    names = tuple(grid)
    axes = {}
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"grid keys must be parameter names (identifiers), got {name!r}")
        values = np.atleast_1d(np.asarray(grid[name]))
        if values.ndim != 1 or values.size == 0:
            raise ValueError(f"grid[{name!r}] must be a non-empty 1-D list of values, got {values}")
        if values.dtype == bool or not np.issubdtype(values.dtype, np.number):
            raise TypeError(f"grid[{name!r}] must hold numbers, got dtype {values.dtype}")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"grid[{name!r}] must hold finite numbers, got {values}")
        axes[name] = values.astype(np.int64 if np.issubdtype(values.dtype, np.integer) else float)
    if combine == "product":
        shape = tuple(axes[n].size for n in names)
        mesh = np.meshgrid(*(axes[n] for n in names), indexing="ij")
        flat = {n: m.reshape(-1) for n, m in zip(names, mesh)}
    elif combine == "zip":
        sizes = {n: axes[n].size for n in names}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"grid values must have equal lengths with combine='zip', got {sizes}")
        shape = (next(iter(sizes.values())),)
        flat = axes
    else:
        raise ValueError(f"combine must be one of {list(COMBINE)}, got {combine!r}")
    return names, flat, shape


def sweep(
    loss_fn: Callable[[Any, Any], jax.Array],
    params: Any,
    batches: Any,
    make_optimizer: Callable[..., optax.GradientTransformation],
    grid: Mapping[str, Any],
    num_steps: int | None = None,
    combine: str = "product",
    seeds: int = 1,
    init_fn: Callable[[jax.Array], Any] | None = None,
    diverge_factor: float | None = 4.0,
    chunk_size: int | None = None,
    mesh: Any = None,
    progress: bool | None = None,
) -> SweepResult:
    """Trains one copy per grid setting, all side by side, and finds the best.

    Every setting gets ``make_optimizer(**setting)`` (values are traced
    scalars, so anything that accepts arrays works: Optax hyperparameters, lrjax
    schedule fields), the same initial parameters and the same batches, for
    ``num_steps`` steps; each is scored by its mean loss over the last 10% of
    steps. Divergent copies are frozen and marked exactly as in
    :func:`lrjax.range_test`, and ``chunk_size``, ``mesh``, ``seeds`` /
    ``init_fn`` and ``progress`` mean the same. Changing grid values (not their
    number) never recompiles.

    Args:
      loss_fn: ``(params, batch) -> scalar`` (Flax models as in ``range_test``).
      params: initial parameters (``None`` with ``init_fn``).
      batches: a pytree with a leading step axis, or a callable ``step -> batch``.
      make_optimizer: ``(**setting) -> optax.GradientTransformation``.
      grid: ``{name: values}``; each setting is called with every name.
      num_steps: steps per copy (default: the number of batches; required
        when ``batches`` is callable).
      combine: ``"product"`` (every combination) or ``"zip"`` (the i-th values
        together; equal lengths).
      seeds: initialisations per setting (needs ``init_fn`` when > 1).
      init_fn: ``key -> params``.
      diverge_factor: freeze a copy when its smoothed loss exceeds this x its
        best (``None``: only on non-finite loss).
      chunk_size: settings per jitted call.
      mesh: a ``jax.sharding.Mesh`` or device list to shard settings over.
      progress: progress bar: ``True``, ``False`` or ``None`` (auto).

    Returns:
      A :class:`SweepResult` (``.best``, ``.scores_grid()``, ``.losses``, ...).

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> X = jax.random.normal(jax.random.PRNGKey(0), (40, 8, 3))
      >>> batches = (X, X @ jnp.array([1.0, -2.0, 0.5]))
      >>> loss_fn = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
      >>> make = lambda max_value, pct_start: optax.sgd(
      ...     lrjax.one_cycle(max_value, 40, pct_start=pct_start))
      >>> res = lrjax.sweep(loss_fn, jnp.zeros(3), batches, make,
      ...                   {"max_value": [0.01, 0.1, 0.3], "pct_start": [0.2, 0.4]})
      >>> res.scores_grid().shape
      (3, 2)
      >>> sorted(res.best)
      ['max_value', 'pct_start']
    """
    if not callable(make_optimizer):
        raise TypeError(
            f"make_optimizer must be a callable (**setting) -> GradientTransformation, "
            f"got {make_optimizer!r}"
        )
    names, flat, shape = _grid_arrays(grid, combine)
    n_settings = next(iter(flat.values())).size
    for i in range(n_settings):  # concrete values: schedules validate them here
        setting = {k: flat[k][i] for k in names}
        try:
            tx = make_optimizer(**setting)
        except (ValueError, TypeError) as e:
            shown = {k: v.item() for k, v in setting.items()}
            raise type(e)(f"grid setting {shown}: {e}") from None
        if not (hasattr(tx, "init") and hasattr(tx, "update")):
            raise TypeError(
                f"make_optimizer(**setting) must return an optax.GradientTransformation, "
                f"got {type(tx).__name__}"
            )
    if num_steps is None:
        n = _engine.num_batches(batches)
        if n is None:
            raise ValueError("num_steps is required when batches is a callable")
        num_steps = n
    num_steps = _engine.check_num_steps(num_steps)
    factor = _engine.check_diverge_factor(diverge_factor)
    chunk = _engine.check_chunk_size(chunk_size)
    the_mesh = _engine.as_mesh(mesh)
    progress_enabled(progress)  # validates
    loss_fn, params = adapt(loss_fn, params)
    _engine.check_steps_vs_batches(num_steps, batches)
    init_params, seeded = _engine.make_init_params(params, init_fn, seeds)
    one = jax.tree.map(lambda x: x[0], init_params) if seeded else init_params
    _engine.check_loss_fn(loss_fn, one, _engine.example_batch(batches))

    out = _engine.train_copies(
        loss_fn=loss_fn,
        make_tx=_engine.KwargsOptimizer(make_optimizer),
        hparams={k: v.astype(_traced_dtype(v)) for k, v in flat.items()},
        params=init_params,
        seeded=seeded,
        batches=batches,
        num_steps=num_steps,
        diverge_factor=factor,
        chunk_size=chunk,
        mesh=the_mesh,
        progress=progress,
        description=f"sweep: {n_settings} settings x {num_steps} steps",
    )
    done = out.completed
    scores, score_std, diverged = parallel_scores(out.losses, out.stop_step)
    return SweepResult(
        names=names,
        grid={k: v[:done] for k, v in flat.items()},
        shape=shape,
        losses=out.losses,
        smoothed=out.smoothed,
        scores=scores,
        score_std=score_std,
        diverged=diverged,
        status=diagnose_curves(np.mean(out.losses, axis=0), diverged, Thresholds()),
        stop_step=out.stop_step,
        num_steps=num_steps,
        combine=combine,
        interrupted=done < n_settings,
    )


def grid_settings(grid: Mapping[str, Any], combine: str = "product") -> list[dict[str, Any]]:
    """The settings :func:`sweep` runs, in order, as a list of ``{name: value}``.

    Example:
      >>> grid_settings({"a": [1, 2], "b": [0.5]})
      [{'a': 1, 'b': 0.5}, {'a': 2, 'b': 0.5}]
    """
    names, flat, _ = _grid_arrays(grid, combine)
    n = next(iter(flat.values())).size
    return [{k: flat[k][i].item() for k in names} for i in range(n)]
