"""Successive halving and population-based training, the population side by side.

:func:`tune` trains a population of copies of a model side by side (the
engine of :func:`lrjax.sweep`: one ``jax.vmap`` over copies of a ``lax.scan``),
in rounds. Between rounds the members are ranked; with ``method="pbt"`` the
worst quarter take the weights, optimizer state and model state of the best
quarter (a gather over the copy axis) and perturb the hyperparameters they
inherit; with ``method="halving"`` the worse half stop. The hyperparameters
are traced data, so the search compiles once (with batches in memory, one
program; streamed, one per round width) and a second call with other ranges
or another key reuses it without compiling.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from lrjax import _engine, _search
from lrjax._checks import check_choice, check_count, check_factory, check_population_on_mesh
from lrjax._results import SweepResult, TuneHistory, TuneResult, score_label


def tune(
    loss_fn: Callable[..., jax.Array],
    params: Any,
    batches: Any,
    make_optimizer: Callable[..., optax.GradientTransformation],
    space: dict[str, Any],
    *,
    population: int | None = None,
    num_steps: int,
    method: str = "halving",
    rounds: int | None = None,
    val_batches: Any = None,
    eval_fn: Callable[..., Any] | None = None,
    key: Any = None,
    mesh: Any = None,
    progress: bool | None = None,
    state: Any = None,
    has_aux: bool = False,
    diverge_factor: float | None = 4.0,
    cooldown_steps: int | None = None,
    trainable: Any = None,
    rate: str | bool | None = None,
    rate_test_steps: int | None = None,
    strategy: str = "auto",
) -> TuneResult:
    """Tunes hyperparameters by successive halving, population-based training or
    random search, the population trained side by side.

    ``population`` members, each with hyperparameters drawn from ``space`` (a
    Latin hypercube), train from the same start on the same batches in
    ``rounds`` rounds of ``num_steps // rounds`` steps; between rounds they are
    ranked by their score after a short cooldown probe, and the method changes
    the population: ``"halving"`` stops the worse half, ``"pbt"`` copies the best
    quartile into the worst and perturbs it, ``"random"`` trains one round. A
    short range test first narrows a rate dimension of ``space``. With batches
    in memory the search is one compiled program; another space of the same
    structure or another key compiles nothing. The rules, their costs and the
    rate test: ``docs/api/range_test.md``, "How tune searches".

    Args:
      loss_fn: ``(params, batch) -> scalar`` (models as in :func:`lrjax.range_test`).
      params: initial parameters or a model object (as in ``range_test``).
      batches: stacked arrays, a callable ``step -> batch`` or an iterable of batches.
      make_optimizer: ``(**values) -> optax.GradientTransformation``; the values are
        traced scalars, so schedule fields are tunable.
      space: ``{name: (low, high) | ("log", low, high) | [options]}``.
      population: the number of members (``None``: the method's default).
      num_steps: training steps per member (a multiple of ``rounds``).
      method: ``"halving"`` (default), ``"pbt"`` or ``"random"``.
      rounds: the number of rounds (``None``: the method's default).
      val_batches: evaluation batches; members are then ranked by validation loss.
      eval_fn: the evaluation score (default: the loss).
      key: the PRNG key of the search and of the members' streams (``PRNGKey(0)``).
      mesh: a ``jax.sharding.Mesh`` or devices to shard the members over.
      progress: as in ``range_test`` (``False``: no report on stderr).
      state: plain-JAX model state, as in ``range_test``.
      has_aux: ``loss_fn`` returns ``(loss, aux)`` (``result.aux``).
      diverge_factor: freeze a member whose smoothed loss exceeds this x its best.
      cooldown_steps: the probe's steps between rounds (``None``: a quarter of a
        round; ``0``: rank members as they are).
      trainable: the arrays to train, an NNX or Equinox filter (fine-tuning).
      rate: the rate dimension the rate test bounds (``None``: one named ``lr``
        or ``learning_rate``; ``False``: no test).
      rate_test_steps: the rate test's steps per copy (``None``: ``num_steps // 8``).
      strategy: ``"auto"``, ``"scan"``, ``"blocks"`` or ``"sequential"``, as in
        ``range_test`` (``result.strategy`` says which ran).

    Returns:
      A :class:`TuneResult` (``.best``, ``.params``, ``.history``, ``.plot()``).

    Raises:
      ValueError: a bad ``space``, ``method``, ``population``, ``num_steps``,
        ``rounds``, ``rate`` or ``rate_test_steps``, or a model or data error.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> X = jax.random.normal(jax.random.PRNGKey(0), (40, 8, 3))
      >>> batches = (X, X @ jnp.array([1.0, -2.0, 0.5]))
      >>> loss_fn = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
      >>> make = lambda lr, pct_start: optax.sgd(lrjax.one_cycle(lr, 40, pct_start=pct_start))
      >>> res = lrjax.tune(loss_fn, jnp.zeros(3), batches, make,
      ...                  {"lr": ("log", 1e-5, 10.0), "pct_start": (0.1, 0.5)},
      ...                  population=8, num_steps=40, rounds=4, progress=False)
      >>> sorted(res.best), res.history.active.sum(axis=1).tolist()
      (['lr', 'pct_start'], [8, 4, 2, 1])
      >>> 1e-5 < res.rate_range[0] < res.rate_range[1] <= 10.0  # narrowed by the rate test
      True
    """
    method = _check_method(method)
    names, kinds, bounds = _search.check_space(space)
    rate_name = _search.find_rate(rate, names, kinds, bounds)
    population, rounds, num_steps = _check_sizes(method, population, rounds, num_steps)
    cooldown = _check_cooldown(cooldown_steps, num_steps // rounds) if rounds > 1 else 0
    test_steps = _check_rate_test_steps(rate_test_steps, rate_name, names, num_steps)
    check_factory(make_optimizer, _search.corners(space), "space corner")
    options = _engine.check_run_options(
        diverge_factor=diverge_factor, mesh=mesh, progress=progress, strategy=strategy
    )
    check_population_on_mesh(population, options.mesh)
    prepared = _engine.prepare(
        loss_fn,
        params,
        batches,
        state=state,
        eval_fn=eval_fn,
        has_aux=has_aux,
        val_batches=val_batches,
        key=key,
        trainable=trainable,
    )
    prepared.source.check_steps(num_steps)
    test = None
    if rate_name is not None:
        test = _rate_test(prepared, make_optimizer, names, kinds, bounds, rate_name, population,
                          test_steps, options)  # fmt: skip
        lo, hi = _search.narrow(
            test.grid[rate_name], test.scores, test.diverged, *bounds[rate_name],
            test.num_steps, num_steps,
        )  # fmt: skip
        bounds = {**bounds, rate_name: np.asarray([lo, hi], bounds[rate_name].dtype)}
    out = _search.run_search(
        prepared,
        _engine.KwargsOptimizer(make_optimizer),
        names,
        kinds,
        bounds,
        method=method,
        population=population,
        rounds=rounds,
        num_steps=num_steps,
        options=options,
        cooldown=cooldown,
        description=f"tune ({method.name}): {population} members x {num_steps} steps",
    )
    result = _result(out, method.name, space, kinds, prepared, num_steps, rounds, cooldown)
    if test is not None:
        rate_range = tuple(float(v) for v in bounds[rate_name])
        result = dataclasses.replace(result, rate=rate_name, rate_range=rate_range, rate_test=test)
    search = _search.search_steps(method, population, rounds, num_steps, cooldown)
    return dataclasses.replace(
        result, steps=search + result.rate_test_total_steps, data_passes=prepared.source.passes
    )


def _check_method(method: Any) -> _search.Method:
    """The registered :class:`~lrjax._search.Method` named ``method``."""
    return _search.METHODS[check_choice("method", method, tuple(_search.METHODS))]


def _check_sizes(method, population, rounds, num_steps) -> tuple[int, int, int]:
    """``(population, rounds, num_steps)``: the method's defaults where ``None``,
    checked (``num_steps`` a multiple of ``rounds``)."""
    population = method.population if population is None else population
    rounds = method.rounds if rounds is None else rounds
    population = check_count("population", population, minimum=method.min_population)
    num_steps = check_count("num_steps", num_steps, minimum=1)
    rounds = check_count("rounds", rounds, minimum=1)
    if method.fixed_rounds is not None and rounds != method.fixed_rounds:
        raise ValueError(
            f"rounds={rounds}: method={method.name!r} trains {method.fixed_rounds} round(s); "
            "leave rounds=None"
        )
    if rounds > num_steps or num_steps % rounds:
        raise ValueError(
            f"num_steps={num_steps} must be a multiple of rounds={rounds} (every round trains "
            f"num_steps // rounds steps); e.g. num_steps={max(1, num_steps // rounds) * rounds}"
        )
    return population, rounds, num_steps


def _check_cooldown(cooldown_steps: Any, round_steps: int) -> int:
    """The cooldown probe's length: a quarter of a round by default, at most a round."""
    if cooldown_steps is None:
        return _search.default_cooldown(round_steps)
    why = f"a round's {round_steps} steps (the probe reuses the round's last batches)"
    return check_count("cooldown_steps", cooldown_steps, minimum=0, maximum=round_steps,
                       at_most=why)  # fmt: skip


def _check_rate_test_steps(steps, rate, names, num_steps) -> int | None:
    """The rate test's length: ``None`` without a rate dimension, else in ``[1, num_steps]``."""
    if rate is None:
        if steps is not None:
            raise ValueError(
                f"rate_test_steps={steps!r} needs a rate dimension to test: name it with rate= "
                f"(space has {list(names)}; by default one named "
                f"{' or '.join(_search.RATE_NAMES)})"
            )
        return None
    if steps is None:
        return _search.default_test_steps(num_steps)
    why = f"num_steps={num_steps} (the test trains the run's first steps)"
    return check_count("rate_test_steps", steps, minimum=1, maximum=num_steps, at_most=why)


def _rate_test(prepared, make_optimizer, names, kinds, bounds, rate, population, steps,
               options) -> SweepResult:  # fmt: skip
    """The short range test over the rate dimension (see :mod:`lrjax._search._rate`)."""
    points = _search.rate_test_points(population)
    grid = _search.probe_grid(names, kinds, bounds, rate, points)
    prepared.source.prefetch(steps)  # a stream's first batches, kept for the search
    out = _engine.run(
        prepared,
        _engine.KwargsOptimizer(make_optimizer),
        grid,
        num_steps=steps,
        options=options,
        description=f"tune's rate test: {points} rates x {steps} steps",
    )
    return SweepResult.from_run(grid, out, options.diverge_factor)


def _score_label(validated: bool, round_steps: int, cooldown: int) -> str:
    """What ``TuneResult.history.scores`` measure, for plots and ``to_dict``."""
    label = score_label(validated, round_steps, span="round")
    if cooldown:
        label += f"; in every round but the last, after a {cooldown}-step cooldown probe"
    return label


def _result(out, method, space, kinds, prepared, num_steps, rounds, cooldown) -> TuneResult:
    rec, final = out.history, out.final
    names = tuple(space)
    # Choices as the options given (ints stay ints), numbers as trained (float32).
    values = {
        n: np.asarray(space[n])[rec.genes[n]] if kind == "choice" else np.asarray(rec.values[n])
        for n, kind in zip(names, kinds)
    }
    P = rec.score.shape[1]
    scores = np.where(np.isnan(final.scores), np.inf, final.scores).astype(np.float64)
    last = rec.active[-1]
    found = bool(np.isfinite(np.where(last, scores, np.inf)).any())
    best_index = int(final.best) if found else None
    has_aux = prepared.model.behaviour.has_aux
    steps = lambda a: np.moveaxis(a, 0, 1).reshape(P, num_steps, *a.shape[3:])
    L = num_steps // rounds
    return TuneResult(
        method=method,
        names=tuple(names),
        kinds=dict(zip(names, kinds)),
        best=None if best_index is None else {n: values[n][-1, best_index].item() for n in names},
        best_index=best_index,
        best_score=float(scores[best_index]) if found else float("inf"),
        scores=scores,
        history=TuneHistory(
            values=values,
            scores=np.asarray(rec.score, np.float64),
            parents=np.asarray(rec.parent),
            active=np.asarray(rec.active),
        ),
        params=final.params if found else None,
        state=final.state if found else None,
        losses=steps(rec.losses),
        diverged=np.asarray(final.stop_step) >= 0,
        num_steps=num_steps,
        rounds=rounds,
        score_label=_score_label(prepared.val is not None, L, cooldown),
        aux=jax.tree.map(steps, rec.aux) if has_aux else None,
        strategy=out.strategy,
    )
