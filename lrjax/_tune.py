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
from lrjax._results import SweepResult, TuneHistory, TuneResult
from lrjax._rules import score_window


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
    """Tunes hyperparameters by successive halving or population-based training.

    A population of ``population`` members, each with hyperparameters drawn
    from ``space``, trains side by side from the same initial parameters on
    the same batches, in ``rounds`` rounds of ``num_steps // rounds`` steps.
    After each round but the last, members are ranked by their score (the
    validation loss with ``val_batches``, else the mean training loss over the
    last 10% of steps; a diverged member scores ``inf`` and ranks last). The
    score between rounds is taken after a *cooldown probe*: each member
    continues for ``cooldown_steps`` steps (a quarter of a round by default)
    on the round's last batches with its updates scaled linearly down towards
    zero, is scored, and the probe is thrown away. Mid-schedule, a member's
    plain loss understates what a high rate reaches once it decays, which made
    both methods greedy for low rates (``benchmarks/tune_quality.py``
    compares search with and without the probe against random search; the
    results are in ``benchmarks/README.md``). It costs ``cooldown_steps``
    extra steps per member and round but the last (a quarter of a round by
    default); ``cooldown_steps=0`` ranks members as they are. Then:

    - ``method="pbt"``: each member of the bottom quartile (``population // 4``)
      is replaced by a copy of a top-quartile member, chosen at random: its
      parameters, optimizer state (so its schedule continues from the
      parent's step count), model state and divergence history. It then
      perturbs each inherited hyperparameter: with probability 0.25 it draws it
      afresh from ``space``; otherwise it multiplies a number by 0.8 or 1.25
      (probability 1/2 each, clipped to the range) or moves a choice to the
      option before or after it.
    - ``method="halving"``: successive halving: the worse half of the members
      still training stop (``ceil(P / 2**(r + 1))`` remain after round ``r``,
      at least one). The members still training are gathered into a smaller
      batch each round, so stopped members cost nothing: the search costs
      ``L * (P + ceil(P/2) + ceil(P/4) + ...)`` steps with ``L = num_steps //
      rounds`` (about ``2 * P * L``; PBT costs ``P * num_steps``), and at the
      same compute halving can start from a larger population.

    The default, halving with 40 members over 5 rounds, costs about what PBT
    with 16 members over 8 rounds (PBT's defaults) costs; it was chosen over
    PBT on the tune benchmark's problems at equal steps, against random
    search with the same and with four times the steps
    (``benchmarks/README.md``, tune quality).

    **The rate test.** A user who does not know the learning rate gives a
    wide range, partly diverging, and random draws over it waste most
    members. So, when ``space`` has a rate dimension (``rate=``; by default
    one named ``lr`` or ``learning_rate``), ``tune`` first trains
    ``min(population, 16)`` copies side by side for ``rate_test_steps`` steps
    (an eighth of the run by default): the run's first steps on its first
    batches, the rate log-spaced over its range, every other dimension at the
    centre of its range. It keeps the part of the range where they trained
    well: from the best tested rate scaled for the run's length
    (``best * rate_test_steps / num_steps / 3``, as
    :meth:`RangeTestResult.suggest_for` scales a rate to a longer run) up to
    halfway, on the log scale, between the last tested rate that trained well
    and the first one above the best that failed (diverged, or lost more than
    half of the best one's progress); up to the range's top if none failed.
    Members are then drawn, resampled and clipped within that range;
    ``result.rate_range``, ``result.rate_test``, ``result.rate_test_steps``
    (per copy) and ``result.steps`` (every training step of the call, the
    test's included) say what it found and cost. The initial population is a
    Latin hypercube: each dimension's range is cut into ``population`` equal
    strata (on the log scale for log ranges) and each stratum is drawn once,
    in random order.

    Every member's schedule sees its own step count (the optimizer state's).
    Members are frozen on divergence exactly as in :func:`lrjax.range_test`.
    Each member's random streams (Dropout) are redrawn every round from
    ``key``, its slot and the round, so a copy does not share its parent's.
    The search's own random numbers come from ``key`` too, inside the
    program: with batches in memory the whole search is one compiled program
    (a ``lax.scan`` over rounds); with streamed batches it compiles one
    program per round width (PBT: one; halving: one per width), and a second call
    with other ranges or another key compiles nothing. Models with state and
    randomness (Flax NNX and Linen, ``state=``), ``val_batches`` and
    ``eval_fn``, streamed or callable ``batches`` and ``has_aux`` work as in
    :func:`lrjax.range_test`.

    Args:
      loss_fn: ``(params, batch) -> scalar`` (Flax models as in ``range_test``).
      params: initial parameters, an ``nnx.Module`` or a Linen
        ``(module, variables)`` pair.
      batches: a pytree with a leading step axis, a callable ``step -> batch``
        or an iterable of batches.
      make_optimizer: ``(**values) -> optax.GradientTransformation``; the values
        are traced scalars (so schedule fields such as
        ``one_cycle(max_value=..., pct_start=...)`` are tunable).
      space: ``{name: range}``, each range ``(low, high)`` (uniform),
        ``("log", low, high)`` (log-uniform, ``low > 0``) or a list of numbers
        (a choice; pass integers this way, ranges give floats).
      population: the number of members (>= 4 for PBT, >= 2 for halving; a
        multiple of the device count with ``mesh``); ``None``: 40 for halving,
        16 for PBT.
      num_steps: training steps per member (of the members trained to the end,
        for halving); a multiple of ``rounds``.
      method: ``"halving"`` (the default), ``"pbt"`` or ``"random"`` (the
        population trained side by side for the whole run, one round: random
        search).
      rounds: the number of rounds (``1``: plain random search); ``None``: 5
        for halving, 8 for PBT.
      val_batches: evaluation batches; members are then ranked by validation loss.
      eval_fn: the evaluation score (default: the loss).
      key: the PRNG key of the search and of the members' random streams
        (``PRNGKey(0)``).
      mesh: a ``jax.sharding.Mesh`` or device list to shard the members over.
      progress: as in ``range_test`` (``False``: no report on stderr).
      state: plain-JAX model state, as in ``range_test``.
      has_aux: ``loss_fn`` returns ``(loss, aux)`` (``result.aux``).
      diverge_factor: freeze a member when its smoothed loss exceeds this x its
        best (``None``: only on non-finite loss).
      cooldown_steps: steps of the cooldown probe that scores members between
        rounds, at most a round (``num_steps // rounds``); ``None``: a quarter
        of a round; ``0``: no probe.
      trainable: which arrays of the model to train, the rest carried unchanged
        (fine-tuning): an NNX filter for an ``nnx.Module`` (default
        ``nnx.Param``, e.g. ``nnx.PathContains("head")``), an Equinox filter
        for an ``eqx.Module`` (default ``eqx.is_inexact_array``: a callable or
        a pytree of bools shaped like the model). Not for plain pytrees.
      rate: the dimension of ``space`` that is the learning rate (a range with
        ``low > 0``), bounded by the rate test before the search; ``None``:
        the first named ``lr`` or ``learning_rate``, if any; ``False``: no
        rate test.
      rate_test_steps: the rate test's steps (at most ``num_steps``);
        ``None``: ``max(1, num_steps // 8)``.
      strategy: ``"auto"``, ``"scan"``, ``"blocks"`` or ``"sequential"``: how
        the steps run, as in :func:`lrjax.range_test` (every strategy gives
        the same numbers; ``result.strategy`` says which ran).

    Returns:
      A :class:`TuneResult` (``.best``, ``.params``, ``.history``, ``.plot()``).

    Raises:
      ValueError: a bad ``space``, ``method``, ``population``, ``num_steps``,
        ``rounds``, ``rate`` or ``rate_test_steps`` (named in the message), or
        a model or data error as in ``range_test``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> X = jax.random.normal(jax.random.PRNGKey(0), (40, 8, 3))
      >>> batches = (X, X @ jnp.array([1.0, -2.0, 0.5]))
      >>> loss_fn = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
      >>> make = lambda lr, pct_start: optax.sgd(lrjax.one_cycle(lr, 40, pct_start=pct_start))
      >>> res = lrjax.tune(loss_fn, jnp.zeros(3), batches, make,
      ...                  {"lr": ("log", 1e-5, 10.0), "pct_start": (0.1, 0.5)},
      ...                  population=8, num_steps=40, rounds=4, progress=False)
      >>> sorted(res.best), res.history.scores.shape, res.history.active.sum(axis=1).tolist()
      (['lr', 'pct_start'], (4, 8), [8, 4, 2, 1])
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
    cooldown_steps = check_count("cooldown_steps", cooldown_steps, minimum=0)
    if cooldown_steps > round_steps:
        raise ValueError(
            f"cooldown_steps={cooldown_steps} must be at most a round's {round_steps} steps "
            f"(the probe reuses the round's last batches)"
        )
    return cooldown_steps


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
    steps = check_count("rate_test_steps", steps, minimum=1)
    if steps > num_steps:
        raise ValueError(
            f"rate_test_steps={steps} must be at most num_steps={num_steps} (the test trains "
            "the run's first steps)"
        )
    return steps


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
    label = (
        "validation loss after the round"
        if validated
        else f"mean training loss, last {score_window(round_steps)} steps of the round"
    )
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
