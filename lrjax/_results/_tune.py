"""The result of :func:`lrjax.tune`: the best member, every member's score, the history."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np

from lrjax._results import _plots
from lrjax._results._sweep import json_scalar, summarize_values, to_json


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
      rate: the dimension the rate test bounded, or ``None`` (no test).
      rate_range: ``(low, high)``, the rate's range after the test (what the
        search drew from), or ``None``.
      rate_test: the rate test as a :class:`SweepResult` (its ``grid``,
        ``scores``, ``diverged``, ``plot()``), or ``None``.
      rate_test_steps: (property) the rate test's training steps per copy,
        as ``tune(rate_test_steps=)`` counts them; 0 without a test.
      rate_test_total_steps: (property) the rate test's training steps in
        all, its copies x :attr:`rate_test_steps`; 0 without a test.
      steps: training steps the whole call spent: the rate test's in all
        (:attr:`rate_test_total_steps`), every member's in every round it
        trained, and the cooldown probes'.
      population: (property) the number of members ``P``.
      strategy: how the engine ran the steps (``"scan"``, ``"blocks"`` or
        ``"sequential"``; see :func:`lrjax.range_test`).
      data_passes: how many times the batches were read from their start (a
        re-iterable source shorter than the run is read again, epoch after
        epoch; 1 for stacked arrays, ``None`` for a callable).
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
    rate: str | None = None
    rate_range: tuple[float, float] | None = None
    rate_test: Any = None
    steps: int = 0
    strategy: str = "scan"
    data_passes: int | None = None

    @property
    def population(self) -> int:
        """The number of members ``P``."""
        return int(self.scores.shape[0])

    @property
    def rate_test_steps(self) -> int:
        """The rate test's training steps per copy, as ``tune(rate_test_steps=)``
        counts them (0 without a test)."""
        return 0 if self.rate_test is None else int(self.rate_test.num_steps)

    @property
    def rate_test_total_steps(self) -> int:
        """The rate test's training steps in all: its copies x :attr:`rate_test_steps`
        (0 without a test)."""
        t = self.rate_test
        return 0 if t is None else int(np.prod(t.losses.shape[:-1])) * self.rate_test_steps

    def __repr__(self) -> str:
        """A short summary: the search, the best values and score (arrays as attributes)."""
        best = "None" if self.best is None else summarize_values(self.best)
        tested = ""
        if self.rate_test is not None:
            lo, hi = self.rate_range
            tested = (
                f"{self.rate} narrowed to [{lo:.3g}, {hi:.3g}] by a rate test of "
                f"{self.rate_test.scores.size} rates x {self.rate_test_steps} steps, "
            )
        return (
            f"TuneResult(method={self.method!r}, {self.population} members x "
            f"{self.rounds} rounds, {self.num_steps} steps each, {tested}"
            f"{self.steps} steps in all, best={best}, "
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
            "rate": self.rate,
            "rate_range": None if self.rate_range is None else list(self.rate_range),
            "rate_test": None if self.rate_test is None else self.rate_test.to_dict(),
            "steps": self.steps,
            "strategy": self.strategy,
            "data_passes": self.data_passes,
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
        return _plots.tune_plot(self)

    def lineage(self) -> list[int | None]:
        """The best member's slot in every round, following its parents back (PBT
        copies a member's state into another slot; ``None`` if every member diverged)."""
        h = self.history
        R = h.scores.shape[0]
        out: list[int | None] = [None] * R
        i = self.best_index
        for r in range(R - 1, -1, -1):
            out[r] = i
            if i is not None:
                i = int(h.parents[r, i])
        return out
