"""Population-based training and successive halving, the population side by side.

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
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from lrjax import _engine, _search
from lrjax._checks import (
    check_choice,
    check_count,
    check_optional_bool,
    check_space,
    check_transformation,
)
from lrjax._results import json_scalar, summarize_values, to_json


class TuneHistory(NamedTuple):
    """What happened in every round, arrays with a leading round axis ``[rounds, P]``.

    Slot ``i`` of round ``r`` is the member that trained in slot ``i`` during
    round ``r``; it started the round from the state slot ``parents[r, i]`` had
    at the end of round ``r - 1`` (itself unless it was replaced).

    Attributes:
      values: ``{name: [rounds, P]}`` the hyperparameters each member trained with
        (numbers as the program used them, in float32 by default; choices as
        the options given).
      scores: ``[rounds, P]`` the score the members were ranked by after the
        round (after the cooldown probe, except in the last round; ``inf``
        once diverged, and for a round whose probe diverged, though the member
        itself trains on; NaN for a member that did not train: halving).
      parents: ``[rounds, P]`` int (``parents[0]`` is ``0..P-1``).
      active: ``[rounds, P]`` bool: the member trained in this round.
    """

    values: dict[str, np.ndarray]
    scores: np.ndarray
    parents: np.ndarray
    active: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class TuneResult:
    """The outcome of :func:`lrjax.tune`.

    Attributes:
      method: ``"pbt"`` or ``"halving"``.
      names: the hyperparameter names, in the order of ``space``.
      kinds: ``{name: "uniform" | "log" | "choice"}``.
      best: ``{name: value}``, the final hyperparameters of the best member
        (the lowest final score among the members that trained in the last
        round), or ``None`` if every member diverged.
      best_index: the best member's slot, or ``None``.
      best_score: its final score (``inf`` if every member diverged).
      scores: ``[P]`` each member's latest score: after the last round, or
        (halving) after the round it stopped in; ``inf`` when diverged.
      history: a :class:`TuneHistory`: every round's values, scores and parents.
      params: the best member's trained parameters (for an NNX model, its
        ``nnx.Param`` state), or ``None``.
      state: the best member's model state (BatchNorm statistics, ...; ``()``
        for a plain model), or ``None``.
      losses: ``[P, num_steps]`` raw training loss of the member in each slot
        at each step (NaN after divergence, and while idle).
      diverged: ``[P]`` bool, the member in the slot at the end had diverged.
      num_steps: training steps per member.
      rounds: the number of rounds.
      score_label: what the scores measure.
      aux: with ``has_aux=True``, the aux pytree ``[P, num_steps, ...]``.
    """

    method: str
    names: tuple[str, ...]
    kinds: dict[str, str]
    best: dict[str, float] | None
    best_index: int | None
    best_score: float
    scores: np.ndarray
    history: TuneHistory
    params: Any
    state: Any
    losses: np.ndarray
    diverged: np.ndarray
    num_steps: int
    rounds: int
    score_label: str
    aux: Any = None

    @property
    def population(self) -> int:
        """The number of members ``P``."""
        return int(self.scores.shape[0])

    def __repr__(self) -> str:
        """A short summary: the search, the best values and score (arrays as attributes)."""
        best = "None" if self.best is None else summarize_values(self.best)
        return (
            f"TuneResult(method={self.method!r}, {self.population} members x "
            f"{self.rounds} rounds, {self.num_steps} steps each, best={best}, "
            f"best_score={self.best_score:.4g} ({self.score_label}), "
            f"diverged={int(np.sum(self.diverged))}/{self.population})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON; NaN and inf become ``None`` (``params``, ``state``, ``aux`` left out)."""
        h = self.history
        return {
            "method": self.method,
            "names": list(self.names),
            "kinds": dict(self.kinds),
            "best": self.best,
            "best_index": self.best_index,
            "best_score": json_scalar(self.best_score),
            "scores": to_json(self.scores),
            "history": {
                "values": {k: to_json(v) for k, v in h.values.items()},
                "scores": to_json(h.scores),
                "parents": h.parents.tolist(),
                "active": h.active.tolist(),
            },
            "losses": to_json(self.losses),
            "diverged": self.diverged.tolist(),
            "num_steps": self.num_steps,
            "rounds": self.rounds,
            "score_label": self.score_label,
        }

    def plot(self):
        """Score per round with exploit links, and each hyperparameter's trajectory.

        One panel for the scores and one per hyperparameter; each member is a
        line through the rounds, a dashed link joins a replaced member to the
        parent it copied, and the best member's lineage is drawn in black.
        Diverged and idle members are left out. Axes are log-scaled for
        ``log`` dimensions and for scores spanning more than a decade.

        Returns:
          The matplotlib Figure.
        """
        from lrjax.plotting import require_matplotlib

        plt = require_matplotlib()
        h = self.history
        panels = [("score", h.scores), *((n, h.values[n]) for n in self.names)]
        fig, axes = plt.subplots(
            1, len(panels), figsize=(3.6 * len(panels), 3.4), layout="constrained", squeeze=False
        )
        lineage = self._lineage()
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
            log = self.kinds.get(name) == "log" or (
                name == "score" and finite.size and finite.min() > 0
                and finite.max() / finite.min() > 10
            )  # fmt: skip
            if log:
                ax.set_yscale("log")
            ax.set_xlabel("round")
            ax.set_title(self.score_label if name == "score" else name, fontsize=9)
            ax.grid(alpha=0.3, which="both")
        return fig

    def _lineage(self) -> list[int | None]:
        """The best member's slot in every round, following its parents back."""
        h = self.history
        R = h.scores.shape[0]
        out: list[int | None] = [None] * R
        i = self.best_index
        for r in range(R - 1, -1, -1):
            out[r] = i
            if i is not None:
                i = int(h.parents[r, i])
        return out


def tune(
    loss_fn: Callable[..., jax.Array],
    params: Any,
    batches: Any,
    make_optimizer: Callable[..., optax.GradientTransformation],
    space: dict[str, Any],
    *,
    population: int = 16,
    num_steps: int,
    method: str = "pbt",
    rounds: int = 8,
    val_batches: Any = None,
    eval_fn: Callable[..., Any] | None = None,
    key: Any = None,
    mesh: Any = None,
    progress: bool | None = None,
    state: Any = None,
    has_aux: bool = False,
    diverge_factor: float | None = 4.0,
    cooldown_steps: int | None = None,
) -> TuneResult:
    """Tunes hyperparameters by population-based training or successive halving.

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
        multiple of the device count with ``mesh``).
      num_steps: training steps per member; a multiple of ``rounds``.
      method: ``"pbt"`` or ``"halving"``.
      rounds: the number of rounds (``1``: plain random search).
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

    Returns:
      A :class:`TuneResult` (``.best``, ``.params``, ``.history``, ``.plot()``).

    Raises:
      ValueError: a bad ``space``, ``method``, ``population``, ``num_steps`` or
        ``rounds`` (named in the message), or a model or data error as in
        ``range_test``.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> X = jax.random.normal(jax.random.PRNGKey(0), (40, 8, 3))
      >>> batches = (X, X @ jnp.array([1.0, -2.0, 0.5]))
      >>> loss_fn = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
      >>> make = lambda max_value, pct_start: optax.sgd(
      ...     lrjax.one_cycle(max_value, 40, pct_start=pct_start))
      >>> res = lrjax.tune(loss_fn, jnp.zeros(3), batches, make,
      ...                  {"max_value": ("log", 1e-3, 0.3), "pct_start": (0.1, 0.5)},
      ...                  population=8, num_steps=40, rounds=4)
      >>> sorted(res.best), res.history.scores.shape
      (['max_value', 'pct_start'], (4, 8))
    """
    if not callable(make_optimizer):
        raise TypeError(
            f"make_optimizer must be a callable (**values) -> GradientTransformation, "
            f"got {make_optimizer!r}"
        )
    method = check_choice("method", method, _search.METHODS)
    names, kinds, bounds = check_space(space)
    population = check_count("population", population, minimum=4 if method == "pbt" else 2)
    num_steps = check_count("num_steps", num_steps, minimum=1)
    rounds = check_count("rounds", rounds, minimum=1)
    if rounds > num_steps or num_steps % rounds:
        raise ValueError(
            f"num_steps={num_steps} must be a multiple of rounds={rounds} (every round trains "
            f"num_steps // rounds steps); e.g. num_steps={max(1, num_steps // rounds) * rounds}"
        )
    round_steps = num_steps // rounds
    if cooldown_steps is None:
        cooldown_steps = _search.default_cooldown(round_steps)
    cooldown_steps = check_count("cooldown_steps", cooldown_steps, minimum=0)
    if cooldown_steps > round_steps:
        raise ValueError(
            f"cooldown_steps={cooldown_steps} must be at most a round's {round_steps} steps "
            f"(the probe reuses the round's last batches)"
        )
    cooldown = cooldown_steps if rounds > 1 else 0
    _check_factory(make_optimizer, space)
    factor = _engine.check_diverge_factor(diverge_factor)
    the_mesh = _engine.as_mesh(mesh)
    _search.check_population_on_mesh(population, the_mesh)
    check_optional_bool("progress", progress)
    prepared = _engine.prepare(
        loss_fn,
        params,
        batches,
        state=state,
        eval_fn=eval_fn,
        has_aux=has_aux,
        val_batches=val_batches,
        key=key,
    )
    prepared.source.check_steps(num_steps)
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
        diverge_factor=factor,
        cooldown=cooldown,
        mesh=the_mesh,
        progress=progress,
        description=f"tune ({method}): {population} members x {num_steps} steps",
    )
    return _result(out, method, space, kinds, prepared, num_steps, rounds, cooldown)


def _check_factory(make_optimizer, space) -> None:
    """Calls ``make_optimizer`` at the space's two corners (concrete values are checked)."""
    for end in (0, -1):
        # a choice's first or last option; a range's low or high end
        values = {n: (dim if isinstance(dim, list) else dim[-2:])[end] for n, dim in space.items()}
        try:
            tx = make_optimizer(**values)
        except (ValueError, TypeError) as e:
            raise type(e)(f"make_optimizer(**{values}) (a corner of space): {e}") from None
        check_transformation(tx, "make_optimizer(**values)")


def _score_label(validated: bool, round_steps: int, cooldown: int) -> str:
    """What ``TuneResult.history.scores`` measure, for plots and ``to_dict``."""
    label = (
        "validation loss after the round"
        if validated
        else f"mean training loss, last {_engine.score_window(round_steps)} steps of the round"
    )
    if cooldown:
        label += f" (before the last: after a {cooldown}-step cooldown probe)"
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
    )
