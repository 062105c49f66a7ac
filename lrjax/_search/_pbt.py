"""Population-based training: the bottom quartile copies the top and perturbs.

After each round but the last, each member of the bottom quartile (``P // 4``
members) takes the whole carry of a top-quartile member (its parameters,
optimizer state, model state, smoothed-loss history and divergence flag: a
gather over the copy axis, outside the per-copy ``vmap``) and the parent's
hyperparameters, perturbed (:func:`lrjax._search._space.perturb`).
"""

from __future__ import annotations

import jax.numpy as jnp

from lrjax._search._method import Between, Changed, Method, every_member, rank_scores, take_copies
from lrjax._search._space import perturb, round_draws


def exploit(now: Between) -> Changed:
    """The bottom quartile copies a top-quartile member (drawn by ``partner``) and
    perturbs the inherited hyperparameters (round ``r + 1``'s draws)."""
    P = now.population
    q = P // 4
    draws = round_draws(now.search_key, now.r + 1, P, len(now.names))
    order = jnp.argsort(rank_scores(now.score), stable=True)
    top, bottom = order[:q], order[P - q :]
    pick = jnp.minimum(jnp.floor(draws.partner[bottom] * q).astype(jnp.int32), q - 1)
    parent = jnp.arange(P, dtype=jnp.int32).at[bottom].set(top[pick])
    replaced = jnp.zeros(P, bool).at[bottom].set(True)
    genes = {}
    for d, (name, kind) in enumerate(zip(now.names, now.kinds)):
        inherited = now.genes[name][parent]
        moved = perturb(inherited, draws.resample[:, d], draws.coin[:, d], draws.sample[:, d],
                        now.bounds[name], kind)  # fmt: skip
        genes[name] = jnp.where(replaced, moved, now.genes[name])
    return Changed(take_copies(now.carry, parent), genes, now.active, parent)


PBT = Method(
    name="pbt",
    population=16,
    rounds=8,
    min_population=4,
    training=every_member,
    change=exploit,
)
