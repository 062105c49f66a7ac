"""The search space: parsing it, drawing from it, moving within it.

A space maps each hyperparameter name to a dimension: ``uniform`` (``low + u
(high - low)``), ``log`` (``exp`` of a uniform draw between ``log low`` and
``log high``) or ``choice`` (option ``floor(u n)``). A perturbed dimension is,
with probability :data:`RESAMPLE_PROBABILITY`, drawn afresh; otherwise a
number is multiplied by 0.8 or 1.25 (probability 1/2 each) and clipped to
``[low, high]``, and a choice moves to the option before or after it (clipped
to the first and last).

All random numbers of a search come from :func:`round_draws` with the search
key, one set per round, so a reference implementation can replay them. The
bounds and options are traced inputs: another space of the same structure
reuses the compiled program.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lrjax._checks import float_dtype, int_dtype

#: Probability that a perturbed dimension is drawn afresh from the space.
RESAMPLE_PROBABILITY = 0.25
#: The factors a perturbed number is multiplied by (probability 1/2 each).
PERTURB_FACTORS = (0.8, 1.25)
#: The kinds of search dimension.
KINDS = ("uniform", "log", "choice")


def _real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def check_space(space: Any) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, np.ndarray]]:
    """A search space as ``(names, kinds, bounds)``.

    ``space`` maps each name to ``(low, high)`` (uniform), ``("log", low, high)``
    (log-uniform, ``low > 0``) or a non-empty list of numbers (a choice).
    ``bounds[name]`` is ``[low, high]`` (floats) or the options (ints when all
    are ints, else floats).

    Example:
      >>> names, kinds, bounds = check_space({"lr": ("log", 1e-4, 1e-1), "m": [0.0, 0.9]})
      >>> kinds
      ('log', 'choice')
      >>> check_space({"lr": (0.1, 0.01)})
      Traceback (most recent call last):
      ...
      ValueError: space['lr'] = (0.1, 0.01): low must be < high
    """
    forms = "(low, high), ('log', low, high) or a list of choices"
    if not isinstance(space, dict) or not space:
        raise ValueError(f"space must be a non-empty dict of name -> {forms}, got {space!r}")
    kinds, bounds = [], {}
    for name, dim in space.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"space keys must be parameter names (identifiers), got {name!r}")
        where = f"space[{name!r}] = {dim!r}"
        if isinstance(dim, list):
            if not dim or not all(_real(v) for v in dim):
                raise ValueError(f"{where}: a choice must be a non-empty list of numbers")
            if not all(math.isfinite(v) for v in dim):
                raise ValueError(f"{where}: choices must be finite")
            ints = all(isinstance(v, numbers.Integral) for v in dim)
            kinds.append("choice")
            bounds[name] = np.asarray(dim, int_dtype() if ints else float_dtype())
            continue
        if isinstance(dim, tuple) and len(dim) == 3 and isinstance(dim[0], str):
            if dim[0] != "log":
                raise ValueError(f"{where}: the only named range is 'log', got {dim[0]!r}")
            kind, (low, high) = "log", dim[1:]
        elif isinstance(dim, tuple) and len(dim) == 2:
            kind, (low, high) = "uniform", dim
        else:
            raise ValueError(f"{where}: must be {forms}")
        if not (_real(low) and _real(high)) or not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{where}: low and high must be finite numbers")
        if low >= high:
            raise ValueError(f"{where}: low must be < high")
        if kind == "log" and low <= 0:
            raise ValueError(f"{where}: a log range needs low > 0")
        kinds.append(kind)
        bounds[name] = np.asarray([low, high], float_dtype())
    return tuple(space), tuple(kinds), bounds


def corners(space: dict[str, Any]) -> list[dict[str, Any]]:
    """The space's two corners: every range's low (a choice's first option), then
    every range's high (last option); ``make_optimizer`` is checked at both.

    Example:
      >>> corners({"lr": ("log", 1e-4, 1e-1), "m": [0.0, 0.9]})
      [{'lr': 0.0001, 'm': 0.0}, {'lr': 0.1, 'm': 0.9}]
    """
    ends = lambda dim: dim if isinstance(dim, list) else dim[-2:]
    return [{n: ends(dim)[end] for n, dim in space.items()} for end in (0, -1)]


def centre(kind: str, bound: np.ndarray) -> Any:
    """A dimension's centre: the geometric mean of a log range, the midpoint of a
    uniform one, the middle option of a choice (the lower middle of an even count).

    Example:
      >>> import numpy as np
      >>> centre("log", np.array([1e-4, 1.0])), centre("choice", np.array([1, 2, 3, 4]))
      (0.01, 2)
    """
    if kind == "choice":
        return bound[(bound.shape[0] - 1) // 2].item()
    lo, hi = float(bound[0]), float(bound[1])
    return math.sqrt(lo * hi) if kind == "log" else (lo + hi) / 2


class Draws(NamedTuple):
    """The uniform ``[0, 1)`` numbers of one round, one row per member slot.

    Attributes:
      partner: ``[P]``: a replaced member takes top-quartile member
        ``floor(partner * (P // 4))`` in rank order (PBT).
      resample: ``[P, D]``: dimension ``d`` is drawn afresh when below
        :data:`RESAMPLE_PROBABILITY`.
      coin: ``[P, D]``: below 0.5: x0.8 (or the option before); else x1.25
        (or the option after).
      sample: ``[P, D]``: the fresh draw (at round 0, within the member's
        stratum: see :func:`stratified`).
    """

    partner: jax.Array
    resample: jax.Array
    coin: jax.Array
    sample: jax.Array


def split_key(key: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(member_key, search_key)`` as raw ``uint32[2]`` data from the user's key.

    Member ``i``'s random streams (Dropout, ...) come from
    ``fold_in(member_key, i)`` as a range-test copy's; the search's draws from
    ``search_key`` (see :func:`round_draws`).
    """
    base = jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    member, search = jax.random.split(base)
    return np.asarray(jax.random.key_data(member)), np.asarray(jax.random.key_data(search))


def round_draws(search_key: Any, i: Any, population: int, n_dims: int) -> Draws:
    """The draws of step ``i`` of the search: 0 draws the initial population,
    ``r + 1`` the changes made after round ``r``.

    Example:
      >>> d = round_draws(np.array([0, 1], np.uint32), 0, population=4, n_dims=2)
      >>> d.sample.shape, d.partner.shape
      ((4, 2), (4,))
    """
    key = jax.random.fold_in(jax.random.wrap_key_data(jnp.asarray(search_key, jnp.uint32)), i)
    k = jax.random.split(key, 4)
    dtype = float_dtype()
    return Draws(
        partner=jax.random.uniform(k[0], (population,), dtype),
        resample=jax.random.uniform(k[1], (population, n_dims), dtype),
        coin=jax.random.uniform(k[2], (population, n_dims), dtype),
        sample=jax.random.uniform(k[3], (population, n_dims), dtype),
    )


def stratified(draws: Draws) -> jax.Array:
    """The initial population's uniform numbers ``[P, D]``, one per stratum.

    Dimension ``d`` of member ``i`` lies in stratum ``rank_i / P`` (a Latin
    hypercube): ``(rank_i + sample[i, d]) / P`` with ``rank_i`` the rank of
    ``coin[i, d]`` among the members, so every ``1/P`` of each range is drawn
    once, where plain draws leave gaps and clumps.

    Example:
      >>> d = round_draws(np.array([0, 1], np.uint32), 0, population=4, n_dims=1)
      >>> np.sort(np.floor(np.asarray(stratified(d))[:, 0] * 4)).tolist()
      [0.0, 1.0, 2.0, 3.0]
    """
    P = draws.coin.shape[0]
    rank = jnp.argsort(jnp.argsort(draws.coin, axis=0, stable=True), axis=0, stable=True)
    return (rank.astype(draws.sample.dtype) + draws.sample) / P


def sample(u: jax.Array, bound: jax.Array, kind: str) -> jax.Array:
    """A fresh draw from one dimension: a value, or an option index for a choice."""
    if kind == "choice":
        n = bound.shape[0]
        return jnp.minimum(jnp.floor(u * n).astype(jnp.int32), n - 1)
    lo, hi = bound[0], bound[1]
    if kind == "log":
        value = jnp.exp(jnp.log(lo) + u * (jnp.log(hi) - jnp.log(lo)))
    else:
        value = lo + u * (hi - lo)
    return jnp.clip(value, lo, hi)


def perturb(gene: jax.Array, resample, coin, draw, bound: jax.Array, kind: str) -> jax.Array:
    """One dimension of a replaced member: drawn afresh, or moved from its parent's."""
    up = coin >= 0.5
    if kind == "choice":
        moved = jnp.clip(gene + jnp.where(up, 1, -1), 0, bound.shape[0] - 1)
    else:
        lo_f, hi_f = (jnp.asarray(f, gene.dtype) for f in PERTURB_FACTORS)
        moved = jnp.clip(gene * jnp.where(up, hi_f, lo_f), bound[0], bound[1])
    return jnp.where(resample < RESAMPLE_PROBABILITY, sample(draw, bound, kind), moved)


def initial_genes(names, kinds, bounds, search_key, population: int) -> dict[str, jax.Array]:
    """The initial population: a Latin hypercube over the space (round 0's draws)."""
    u = stratified(round_draws(search_key, 0, population, len(names)))
    return {n: sample(u[:, d], bounds[n], kind) for d, (n, kind) in enumerate(zip(names, kinds))}


def decode(genes: dict, bounds: dict, names, kinds) -> dict:
    """The values ``make_optimizer`` receives: numbers as they are, options looked up."""
    return {
        n: bounds[n][genes[n]] if kind == "choice" else genes[n] for n, kind in zip(names, kinds)
    }
