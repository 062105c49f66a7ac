"""Successive halving: the worse half of the members still training stop.

``ceil(P / 2**(r + 1))`` members remain after round ``r`` (at least one). The
round gathers the members still training into a batch of its own static
width, so a stopped member costs nothing; the search costs ``L * (P +
ceil(P/2) + ceil(P/4) + ...)`` steps with ``L`` steps per round, about ``2 P L``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lrjax._search._method import Between, Changed, Method, rank_scores


def keep_counts(population: int, rounds: int) -> np.ndarray:
    """Members still training after each round, ``[rounds]``.

    ``ceil(P / 2**(r + 1))``, at least 1 (the last round changes nothing).

    Example:
      >>> keep_counts(8, 4).tolist()
      [4, 2, 1, 1]
    """
    return np.asarray([max(1, -(-population // 2 ** (r + 1))) for r in range(rounds)], np.int32)


def training(population: int, rounds: int) -> tuple[int, ...]:
    """The members training in each round: all, then those kept after each round.

    Example:
      >>> training(16, 5)
      (16, 8, 4, 2, 1)
    """
    return (population, *keep_counts(population, rounds)[:-1].tolist())


def halve(now: Between) -> Changed:
    """The ``keep_counts(P, R)[r]`` best of the active members stay active."""
    keep = jnp.asarray(keep_counts(now.population, now.rounds))[now.r]
    inactive = ~now.active
    order = jnp.lexsort((jnp.where(now.active, rank_scores(now.score), jnp.inf), inactive))
    rank = jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0], dtype=order.dtype))
    same = jnp.arange(now.population, dtype=jnp.int32)
    return Changed(now.carry, now.genes, now.active & (rank < keep), same)


HALVING = Method(
    name="halving",
    population=40,
    rounds=5,
    min_population=2,
    training=training,
    change=halve,
)
