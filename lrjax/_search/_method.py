"""What a search method is: a small value the method-agnostic round calls.

A method says how many members train in each round and how the population
changes between rounds (after every round but the last). Each method is one
module (:mod:`._pbt`, :mod:`._halving`, :mod:`._random`) holding a
:class:`Method`; :data:`lrjax._search.METHODS` registers them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Between(NamedTuple):
    """The population after a round, as a method's ``change`` sees it.

    Attributes:
      carry: the kernel's carry of every member, ``[1, P, ...]``.
      genes: ``{name: [P]}``: a number, or an option index for a choice.
      active: ``[P]`` bool: still training.
      score: ``[P]`` the round's scores (``inf`` diverged; rank with
        :func:`rank_scores`).
      r: the round that ended (traced when rounds run in a loop).
      bounds: ``{name: array}``: each dimension's range or options.
      search_key: the raw key of the search's draws (:func:`round_draws`).
      names: the hyperparameter names.
      kinds: each name's kind.
      population: ``P``.
      rounds: ``R``.
    """

    carry: Any
    genes: dict
    active: jax.Array
    score: jax.Array
    r: Any
    bounds: dict
    search_key: Any
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    population: int
    rounds: int


class Changed(NamedTuple):
    """What a method's ``change`` returns for the next round.

    Attributes:
      carry: every member's carry (e.g. copied from a parent).
      genes: every member's hyperparameters.
      active: which members still train.
      parent: ``[P]`` the slot each member's state came from.
    """

    carry: Any
    genes: dict
    active: jax.Array
    parent: jax.Array


class Method(NamedTuple):
    """A search method.

    Attributes:
      name: ``method=`` in :func:`lrjax.tune`.
      population: the default number of members.
      rounds: the default number of rounds.
      min_population: the fewest members it works with.
      training: ``(population, rounds) -> (members training in round 0, 1, ...)``;
        the round computes only those (gathered into a batch of that width).
      change: ``Between -> Changed``, the population's change between rounds.
      fixed_rounds: the only number of rounds it takes, or ``None``.
    """

    name: str
    population: int
    rounds: int
    min_population: int
    training: Callable[[int, int], tuple[int, ...]]
    change: Callable[[Between], Changed]
    fixed_rounds: int | None = None


def rank_scores(score: jax.Array) -> jax.Array:
    """Scores to rank by: NaN (diverged) becomes ``inf``, ranked last."""
    return jnp.where(jnp.isnan(score), jnp.inf, score)


def unchanged(now: Between) -> Changed:
    """No change: every member keeps its state and hyperparameters."""
    same = jnp.arange(now.population, dtype=jnp.int32)
    return Changed(now.carry, now.genes, now.active, same)


def take_copies(tree: Any, index: jax.Array) -> Any:
    """Gathers along the copy axis (axis 1, after the seed axis) of every leaf."""
    return jax.tree.map(lambda x: jnp.take(x, index, axis=1), tree)


def every_member(population: int, rounds: int) -> tuple[int, ...]:
    """Every member trains in every round."""
    return (population,) * rounds
