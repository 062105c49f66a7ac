"""Vectorized hyperparameter sweeps: every setting of a grid trained side by side.

:func:`sweep` is the general form of the range test: ``make_optimizer`` builds
an Optax transformation from named hyperparameters, and every setting of the
grid is one copy of the model, trained side by side on the range test's
engine (the same strategies, divergence freezing, chunking and sharding).
lrjax schedules are pytrees with traceable fields, so a grid over a schedule's
parameters works: ``make_optimizer(max_value, pct_start)`` may return
``optax.adam(lrjax.one_cycle(max_value, total_steps, pct_start=pct_start))``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import optax

from lrjax import _engine
from lrjax._checks import (
    check_choice,
    check_count,
    check_eval_every,
    check_factory,
    float_dtype,
    int_dtype,
)
from lrjax._results import SweepResult

COMBINE = ("product", "zip")


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
    chunk_size: int | str | None = None,
    mesh: Any = None,
    progress: bool | None = None,
    *,
    state: Any = None,
    key: Any = None,
    val_batches: Any = None,
    eval_fn: Callable[..., Any] | None = None,
    eval_every: int | None = None,
    has_aux: bool = False,
    return_params: bool = False,
    strategy: str = "auto",
    trainable: Any = None,
) -> SweepResult:
    """Trains one copy per grid setting, all side by side, and finds the best.

    Every setting gets ``make_optimizer(**setting)`` (values are traced
    scalars, so anything that accepts arrays works: Optax hyperparameters, lrjax
    schedule fields), the same initial parameters and the same batches, for
    ``num_steps`` steps; each is scored by its mean loss over the last 10% of
    steps (or by its validation loss with ``val_batches``). Models with state
    and randomness (Flax NNX and Linen, ``state=``, ``key=``), evaluation,
    aux outputs, streamed batches and divergent copies are handled exactly as
    in :func:`lrjax.range_test`, and ``chunk_size``, ``mesh``, ``seeds`` /
    ``init_fn`` and ``progress`` mean the same. Changing grid values (not their
    number) never recompiles.

    Args:
      loss_fn: ``(params, batch) -> scalar`` (Flax models as in ``range_test``).
      params: initial parameters (``None`` with ``init_fn``).
      batches: a pytree with a leading step axis, a callable ``step -> batch``,
        or an iterable of batches (streamed as in ``range_test``).
      make_optimizer: ``(**setting) -> optax.GradientTransformation``.
      grid: ``{name: values}``; each setting is called with every name.
      num_steps: steps per copy (default: the length of the stacked
        batches; required when ``batches`` is a callable or an iterable).
      combine: ``"product"`` (every combination) or ``"zip"`` (the i-th values
        together; equal lengths).
      seeds: initialisations per setting (needs ``init_fn`` when > 1).
      init_fn: ``key -> params``.
      diverge_factor: freeze a copy when its smoothed loss exceeds this x its
        best (``None``: only on non-finite loss).
      chunk_size: settings per jitted call (``"auto"``: the most that fit).
      mesh: a ``jax.sharding.Mesh`` or device list to shard settings over.
      progress: as in ``range_test`` (``False``: no report on stderr).
      state: plain-JAX model state, as in ``range_test``.
      key: the PRNG key of the copies' random streams (``PRNGKey(0)``).
      val_batches: evaluation batches; the scores are then validation losses.
      eval_fn: the evaluation score (default: the loss).
      eval_every: also evaluate every this many steps.
      has_aux: ``loss_fn`` returns ``(loss, aux)`` (``result.aux``).
      return_params: keep every setting's final parameters and model state
        (``result.params``, ``result.state``; ``best_params()``, ``best_state()``).
      strategy: ``"auto"``, ``"scan"``, ``"blocks"`` or ``"sequential"``: how the
        steps run (see :func:`lrjax.range_test`).
      trainable: the arrays to train, an NNX or Equinox filter; the rest is carried
        unchanged (fine-tuning: ``docs/frameworks.md``).

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
    names, flat, shape = _grid_arrays(grid, combine)
    n_settings = next(iter(flat.values())).size
    settings = ({k: flat[k][i] for k in names} for i in range(n_settings))
    check_factory(make_optimizer, settings, "grid setting")
    check_choice("combine", combine, COMBINE)
    options = _engine.check_run_options(
        diverge_factor=diverge_factor, chunk_size=chunk_size, mesh=mesh, progress=progress,
        return_params=return_params, strategy=strategy,
    )  # fmt: skip
    prepared = _engine.prepare(
        loss_fn,
        params,
        batches,
        seeds=seeds,
        init_fn=init_fn,
        state=state,
        eval_fn=eval_fn,
        has_aux=has_aux,
        val_batches=val_batches,
        key=key,
        trainable=trainable,
    )
    if num_steps is None:
        if prepared.source.length is None:
            raise ValueError("num_steps is required when batches is a callable or an iterable")
        num_steps = prepared.source.length
    num_steps = check_count("num_steps", num_steps, minimum=1)
    prepared.source.check_steps(num_steps)
    every = check_eval_every(eval_every, num_steps, prepared.val is not None)
    out = _engine.run(
        prepared,
        _engine.KwargsOptimizer(make_optimizer),
        {k: v.astype(_traced_dtype(v)) for k, v in flat.items()},
        num_steps=num_steps,
        options=options,
        eval_every=every,
        description=f"sweep: {n_settings} settings x {num_steps} steps",
    )
    return SweepResult.from_run(
        flat, out, options.diverge_factor, shape=shape, combine=combine, eval_every=every
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
