"""Populations: copies trained in rounds, ranked, copied and stopped between rounds.

:func:`lrjax.tune` trains a population of ``P`` members side by side with the
kernel of :mod:`lrjax._engine._kernel` (``_init``, ``_train``, divergence
freezing, evaluation, the ``vmap`` over copies), one kernel block per round.
Between rounds the members are ranked and the population changes:

- ``"pbt"`` (population-based training): each member of the bottom quartile
  (``P // 4`` members) takes the whole carry of a top-quartile member (its
  parameters, optimizer state, model state, smoothed-loss history and
  divergence flag: a gather over the copy axis, outside the per-copy ``vmap``)
  and the parent's hyperparameters, perturbed.
- ``"halving"`` (successive halving): the worse half of the members still
  training stop. Each round gathers the members still training into a batch
  of its own static width (:func:`round_widths`), trains it and scatters the
  results back, so a stopped member costs nothing; the rounds are then
  unrolled in the program (their shapes differ).

Every member draws its hyperparameters from a search space of dimensions
``uniform`` (``low + u (high - low)``), ``log`` (``exp`` of a uniform draw
between ``log low`` and ``log high``) or ``choice`` (option ``floor(u n)``).
A perturbed dimension is, with probability :data:`RESAMPLE_PROBABILITY`,
drawn afresh from the space; otherwise a number is multiplied by 0.8 or 1.25
(probability 1/2 each) and clipped to ``[low, high]``, and a choice moves to
the option before or after it (clipped to the first and last).

All random numbers of the search come from :func:`round_draws` with the
search key, one set per round, so a reference implementation can replay them.
Ranges (the bounds and options of the space) and keys are traced inputs:
another space of the same structure, or another key, reuses the compiled
program. The whole search is one compiled program when the batches are in
memory (a ``lax.scan`` over rounds for PBT, the rounds unrolled for halving), and
one program per round when they are streamed (PBT: the same program every
round; halving: one per round width).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lrjax import _engine
from lrjax._checks import float_dtype

#: Probability that a perturbed dimension is drawn afresh from the space.
RESAMPLE_PROBABILITY = 0.25
#: The factors a perturbed number is multiplied by (probability 1/2 each).
PERTURB_FACTORS = (0.8, 1.25)
#: The methods: population-based training and successive halving.
METHODS = ("pbt", "halving")
#: The kinds of search dimension.
KINDS = ("uniform", "log", "choice")
#: Each method's default ``(population, rounds)``: halving over 5 rounds with 40
#: members costs about what PBT with 16 members over 8 rounds costs
#: (``benchmarks/tune_quality.py`` compares them at equal steps).
DEFAULT_SIZES = {"pbt": (16, 8), "halving": (40, 5)}
#: Default cooldown probe: this fraction of a round's steps (see :func:`default_cooldown`).
COOLDOWN_FRACTION = 4


def default_cooldown(round_steps: int) -> int:
    """The default cooldown probe length: a quarter of a round (0 below 4 steps).

    Example:
      >>> default_cooldown(60), default_cooldown(3)
      (15, 0)
    """
    return round_steps // COOLDOWN_FRACTION


@dataclasses.dataclass(frozen=True)
class CooledDown:
    """``make_tx`` of the cooldown probe: ``h = (values, end)``; updates scaled by
    ``(end - step) / (steps + 1)``, clipped to ``[0, 1]``.

    Over the probe's steps ``end - steps .. end - 1`` the scale falls linearly
    from ``steps / (steps + 1)`` to ``1 / (steps + 1)``: the member's own
    optimizer and schedule, with its step size annealed towards zero (scaling
    an Optax update scales the rate, whatever the optimizer).
    """

    make_tx: Any
    steps: int

    def __call__(self, h: Any, step: Any) -> optax.GradientTransformation:
        values, end = h
        tx = self.make_tx(values, step)
        dtype = float_dtype()
        scale = jnp.clip((end - step).astype(dtype) / (self.steps + 1), 0, 1)

        def update(grads, state, params=None):
            updates, state = tx.update(grads, state, params)
            return jax.tree.map(lambda u: u * scale.astype(u.dtype), updates), state

        return optax.GradientTransformation(tx.init, update)


@dataclasses.dataclass(frozen=True)
class Shifted:
    """``batch_fn`` of the cooldown probe: the round's last batches again."""

    batch_fn: Any
    shift: int

    def __call__(self, t: Any) -> Any:
        return self.batch_fn(t - self.shift)


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    """The static part of a search (hashable: one compilation per distinct spec).

    Attributes:
      kernel: the kernel's :class:`~lrjax._engine._engine.Spec` (one block = one round).
      names: the hyperparameter names.
      kinds: each name's kind (``"uniform"``, ``"log"`` or ``"choice"``).
      method: ``"pbt"`` or ``"halving"``.
      population: the number of members ``P``.
      rounds: the number of rounds ``R``.
      cooldown: steps of the cooldown probe that scores a member between
        rounds (0: score it as it is; see :func:`_cooldown_score`).
      widths: members computed in each round (see :func:`round_widths`).
      copy_sharding: the sharding of the carry's copy axis, or ``None``.
    """

    kernel: _engine.Spec
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    method: str
    population: int
    rounds: int
    cooldown: int = 0
    widths: tuple[int, ...] = ()
    copy_sharding: Any = None

    @property
    def probe(self) -> _engine.Spec:
        """The kernel spec of the cooldown probe (one block of ``cooldown`` steps)."""
        ks, K = self.kernel, self.cooldown
        return dataclasses.replace(
            ks,
            make_tx=CooledDown(ks.make_tx, K),
            batch_fn=None if ks.batch_fn is None else Shifted(ks.batch_fn, K),
            block=K,
            padded=False,
        )


class Draws(NamedTuple):
    """The uniform ``[0, 1)`` numbers of one round, one row per member slot.

    Attributes:
      partner: ``[P]``: a replaced member takes top-quartile member
        ``floor(partner * (P // 4))`` in rank order.
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


def keep_counts(population: int, rounds: int) -> np.ndarray:
    """Successive halving: members still training after each round, ``[rounds]``.

    ``ceil(P / 2**(r + 1))``, at least 1 (the last round changes nothing).

    Example:
      >>> keep_counts(8, 4).tolist()
      [4, 2, 1, 1]
    """
    return np.asarray([max(1, -(-population // 2 ** (r + 1))) for r in range(rounds)], np.int32)


def search_steps(method: str, population: int, rounds: int, num_steps: int, cooldown: int) -> int:
    """Training steps a search costs: every round's members, and the cooldown probes
    after every round but the last.

    Example:
      >>> search_steps("pbt", 16, 8, 240, 0), search_steps("halving", 8, 3, 30, 2)
      (3840, 164)
    """
    widths = round_widths(method, population, rounds)
    return (num_steps // rounds) * sum(widths) + cooldown * sum(widths[:-1])


def round_widths(method: str, population: int, rounds: int, devices: int = 1) -> tuple[int, ...]:
    """Members computed in each round: all of them for PBT; for halving, those still
    training (rounded up to a multiple of ``devices`` so they split over a mesh).

    Halving gathers the members still training into a smaller batch each
    round, so stopped members cost nothing.

    Example:
      >>> round_widths("halving", 16, 5), round_widths("halving", 16, 5, devices=4)
      ((16, 8, 4, 2, 1), (16, 8, 4, 4, 4))
    """
    if method != "halving":
        return (population,) * rounds
    training = [population, *keep_counts(population, rounds)[:-1].tolist()]
    return tuple(min(population, -(-n // devices) * devices) for n in training)


# ------------------------------------------------------------ the space


def _sample(u: jax.Array, bound: jax.Array, kind: str) -> jax.Array:
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


def _perturb(gene: jax.Array, resample, coin, sample, bound: jax.Array, kind: str) -> jax.Array:
    """One dimension of a replaced member: drawn afresh, or moved from its parent's."""
    up = coin >= 0.5
    if kind == "choice":
        moved = jnp.clip(gene + jnp.where(up, 1, -1), 0, bound.shape[0] - 1)
    else:
        lo_f, hi_f = (jnp.asarray(f, gene.dtype) for f in PERTURB_FACTORS)
        moved = jnp.clip(gene * jnp.where(up, hi_f, lo_f), bound[0], bound[1])
    return jnp.where(resample < RESAMPLE_PROBABILITY, _sample(sample, bound, kind), moved)


def decode(genes: dict, bounds: dict, spec: SearchSpec) -> dict:
    """The values ``make_optimizer`` receives: numbers as they are, options looked up."""
    return {
        n: bounds[n][genes[n]] if kind == "choice" else genes[n]
        for n, kind in zip(spec.names, spec.kinds)
    }


# ------------------------------------------------------------- the rules


def rank_scores(score: jax.Array) -> jax.Array:
    """Scores to rank by: NaN (diverged) becomes ``inf``, ranked last."""
    return jnp.where(jnp.isnan(score), jnp.inf, score)


def _take_copies(tree: Any, index: jax.Array) -> Any:
    """Gathers along the copy axis (axis 1, after the seed axis) of every leaf."""
    return jax.tree.map(lambda x: jnp.take(x, index, axis=1), tree)


def _put_copies(tree: Any, index: jax.Array, values: Any) -> Any:
    """``tree`` with copies ``index`` (axis 1) replaced by ``values``."""
    return jax.tree.map(lambda x, v: x.at[:, index].set(v), tree, values)


def _put_rows(index: jax.Array, n: int, tree: Any) -> Any:
    """Leaves ``[w, ...]`` scattered to rows ``index`` of ``[n, ...]`` (NaN elsewhere)."""

    def one(x):
        fill = jnp.nan if jnp.issubdtype(x.dtype, jnp.floating) else 0
        return jnp.full((n, *x.shape[1:]), fill, x.dtype).at[index].set(x)

    return jax.tree.map(one, tree)


def _where_copies(mask: jax.Array, a: Any, b: Any) -> Any:
    """Per copy (axis 1 of every leaf): ``a`` where ``mask``, else ``b``."""

    def pick(x, y):
        m = mask.reshape((1, mask.shape[0]) + (1,) * (x.ndim - 2))
        return jnp.where(m, x, y)

    return jax.tree.map(pick, a, b)


def _exploit(carry, genes, score, draws: Draws, bounds, spec: SearchSpec):
    """PBT: the bottom quartile copies the top quartile and perturbs; ``(carry, genes, parent)``."""
    P = spec.population
    q = P // 4
    order = jnp.argsort(rank_scores(score), stable=True)
    top, bottom = order[:q], order[P - q :]
    pick = jnp.minimum(jnp.floor(draws.partner[bottom] * q).astype(jnp.int32), q - 1)
    parent = jnp.arange(P, dtype=jnp.int32).at[bottom].set(top[pick])
    replaced = jnp.zeros(P, bool).at[bottom].set(True)
    new_genes = {}
    for d, (name, kind) in enumerate(zip(spec.names, spec.kinds)):
        inherited = genes[name][parent]
        moved = _perturb(
            inherited,
            draws.resample[:, d],
            draws.coin[:, d],
            draws.sample[:, d],
            bounds[name],
            kind,
        )
        new_genes[name] = jnp.where(replaced, moved, genes[name])
    return _take_copies(carry, parent), new_genes, parent


def _halve(active: jax.Array, score: jax.Array, keep: jax.Array) -> jax.Array:
    """Successive halving: the ``keep`` best of the active members stay active."""
    inactive = ~active
    order = jnp.lexsort((jnp.where(active, rank_scores(score), jnp.inf), inactive))
    rank = jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0], dtype=order.dtype))
    return active & (rank < keep)


# ---------------------------------------------------------- the program


class Population(NamedTuple):
    """What the search carries from round to round.

    Attributes:
      carry: the kernel's :class:`~lrjax._engine._engine.Carry`, ``[1, P, ...]``.
      genes: ``{name: [P]}``: a number, or an option index for a choice.
      active: ``[P]`` bool: still training (always true for PBT).
      score: ``[P]`` each member's latest score (NaN before the first round).
      parent: ``[P]`` the slot each member's state came from at the last change.
    """

    carry: _engine.Carry
    genes: dict
    active: jax.Array
    score: jax.Array
    parent: jax.Array


class Round(NamedTuple):
    """What one round records (stacked over rounds by the search).

    Attributes:
      values: ``{name: [P]}`` the hyperparameters each member trained with.
      genes: ``{name: [P]}`` the same as numbers, or option indices for choices.
      score: ``[P]`` the score after the round (``inf`` diverged, NaN idle).
      parent: ``[P]`` the slot each member's state came from before the round.
      active: ``[P]`` bool: trained in this round.
      losses: ``[P, L]`` raw training losses (NaN after divergence, or idle).
      aux: ``has_aux``: the aux pytree ``[P, L, ...]``; else ``()``.
    """

    values: dict
    genes: dict
    score: jax.Array
    parent: jax.Array
    active: jax.Array
    losses: jax.Array
    aux: Any


def _constrain(tree: Any, spec: SearchSpec) -> Any:
    if spec.copy_sharding is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, spec.copy_sharding)


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


def _start(params, state, keys, bounds, search_key, spec: SearchSpec) -> Population:
    P, D = spec.population, len(spec.names)
    draws = round_draws(search_key, 0, P, D)
    u = stratified(draws)
    genes = {
        n: _sample(u[:, d], bounds[n], kind)
        for d, (n, kind) in enumerate(zip(spec.names, spec.kinds))
    }
    hs = decode(genes, bounds, spec)
    carry = _constrain(_engine.init_copies(hs, params, state, keys, spec.kernel), spec)
    return Population(
        carry=carry,
        genes=genes,
        active=jnp.ones(P, bool),
        score=jnp.full(P, jnp.nan, float_dtype()),
        parent=jnp.arange(P, dtype=jnp.int32),
    )


def _reseed(state, keys, r, spec: SearchSpec):
    """Each member's random streams for round ``r``: ``fold_in(member_key, r)``.

    After a copy, parent and child would otherwise share the parent's streams.
    """

    def one(state, key):
        key = jax.random.fold_in(jax.random.wrap_key_data(key), r)
        return spec.kernel.behaviour.seed(state, key)

    return _engine.over_copies(one, (0, 0), (0, 0))(state, keys)


def _idle_nan(idle: jax.Array, x: jax.Array) -> jax.Array:
    """``x`` ``[P, ...]`` with float entries NaN for idle members, integer and bool
    entries 0 (as :func:`_put_rows` fills them: the same whether or not a padded
    round width computed the member)."""
    mask = idle.reshape((idle.shape[0],) + (1,) * (x.ndim - 1))
    if jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
        return jnp.where(mask, jnp.zeros((), x.dtype), x)
    return _engine.nan_where(mask, x)


def _score(carry, losses, val_score, ks: _engine.Spec) -> jax.Array:
    """Each member's score: validation loss, else the mean of the last 10% of ``losses``."""
    n = losses.shape[-1]
    raw = val_score if ks.evaluate else jnp.mean(losses[:, n - _engine.score_window(n) :], axis=-1)
    return jnp.where(carry.stopped[0] | ~jnp.isfinite(raw), jnp.inf, raw).astype(float_dtype())


def _cooldown_score(carry, data, t0, hs, keys, factor, val, spec: SearchSpec) -> jax.Array:
    """Scores after a cooldown probe: ``K`` more steps with the step size annealed.

    Mid-schedule, a member's loss understates what a high rate reaches once it
    decays (a short-horizon bias that makes PBT and halving greedy for low
    rates). The probe continues each member from the end of the round (steps
    ``t0 + L .. t0 + L + K - 1`` of its schedule) on the round's last ``K``
    batches, with its updates scaled down linearly towards zero
    (:class:`CooledDown`), and scores the result as a round is scored. The
    probe's parameters are then thrown away.
    """
    K, L = spec.cooldown, spec.kernel.block
    blocks = jax.tree.map(lambda x: x[None, L - K :], data)
    end = jnp.full(keys.shape[1:2], t0 + L + K, jnp.int32)
    cooled, out = _engine.train_copies(
        carry, blocks, t0 + L, (hs, end), keys, factor, val, spec.probe
    )
    return _score(cooled, out.steps.loss[0, :, 0], out.val_score[0, :, 0], spec.kernel)


def _round(
    pop: Population, xs, keys, factor, val, bounds, search_key, spec: SearchSpec, width=None
):
    """Trains one round, scores it and changes the population (not after the last).

    ``width``: the members computed (static; ``None``: all of them).
    """
    r, data, keep = xs
    ks = spec.kernel
    P, L = spec.population, ks.block
    hs = decode(pop.genes, bounds, spec)
    t0 = r * jnp.int32(L)
    last = r == spec.rounds - 1
    # The members computed this round: all, or (halving) those still training
    # first, gathered into a batch of the round's static width.
    width = P if width is None else width
    start, sub_keys, sub_hs = pop.carry, keys, hs
    if width < P:
        index = jnp.argsort(~pop.active, stable=True)[:width]
        start, sub_keys = _take_copies((start, keys), index)
        sub_hs = jax.tree.map(lambda x: x[index], hs)
    start = _constrain(start._replace(state=_reseed(start.state, sub_keys, r, spec)), spec)
    blocks = jax.tree.map(lambda x: x[None], data)
    trained, out = _engine.train_copies(start, blocks, t0, sub_hs, sub_keys, factor, val, ks)
    # one seed row, one block: [width, L, ...]
    losses, aux = out.steps.loss[0, :, 0], jax.tree.map(lambda a: a[0, :, 0], out.steps.aux)
    score = _score(trained, losses, out.val_score[0, :, 0], ks)
    if spec.cooldown:
        # Between rounds, rank on what a member would reach if annealed now.
        probe = lambda: _cooldown_score(trained, data, t0, sub_hs, sub_keys, factor, val, spec)
        if isinstance(last, bool):  # an unrolled round: no probe after the last
            score = score if last else probe()
        else:
            score = jax.lax.cond(last, lambda: score, probe)
    if width < P:  # back to every slot: rows of members not computed are NaN
        trained = _put_copies(pop.carry, index, trained)
        losses, aux, score = _put_rows(index, P, (losses, aux, score))
    # Idle members (halving) keep what they had; their round is thrown away.
    carry = _constrain(_where_copies(pop.active, trained, pop.carry), spec)
    idle = ~pop.active
    record = Round(
        values=hs,
        genes=pop.genes,
        score=jnp.where(idle, jnp.nan, score),
        parent=pop.parent,
        active=pop.active,
        losses=_idle_nan(idle, losses),
        aux=jax.tree.map(lambda a: _idle_nan(idle, a), aux),
    )
    latest = jnp.where(idle, pop.score, score)
    same = jnp.arange(P, dtype=jnp.int32)
    if spec.method == "pbt":
        draws = round_draws(search_key, r + 1, P, len(spec.names))
        moved, genes, parent = _exploit(carry, pop.genes, score, draws, bounds, spec)
        active = pop.active
    else:
        moved, genes, parent = carry, pop.genes, same
        active = _halve(pop.active, score, keep)
    pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(last, x, y), a, b)
    nxt = Population(
        carry=_constrain(pick(carry, moved), spec),
        genes=pick(pop.genes, genes),
        active=jnp.where(last, pop.active, active),
        score=latest,
        parent=jnp.where(last, same, parent),
    )
    return nxt, record


class Final(NamedTuple):
    """The end of a search: the best member and what the result needs of the rest.

    Attributes:
      best: the best member's slot (among those that trained in the last round).
      params: the best member's trained parameters.
      state: the best member's model state.
      scores: ``[P]`` each member's latest score.
      stop_step: ``[P]`` the step a member diverged at, ``-1`` if never.
    """

    best: jax.Array
    params: Any
    state: Any
    scores: jax.Array
    stop_step: jax.Array


def _final(pop: Population) -> Final:
    best = jnp.argmin(jnp.where(pop.active, rank_scores(pop.score), jnp.inf)).astype(jnp.int32)
    one = lambda tree: jax.tree.map(lambda x: x[0, best], tree)
    stop_step = pop.carry.stop_step[0]
    return Final(best, one(pop.carry.params), one(pop.carry.state), pop.score, stop_step)


_STATIC = ("spec", "out_sharding")


@functools.partial(jax.jit, static_argnames=_STATIC)
def tune_search(
    params, state, keys, blocks, keep, factor, val, bounds, search_key, *, spec, out_sharding
):
    """The whole search in one program (data in memory): start, every round, the end."""
    pop = _start(params, state, keys, bounds, search_key, spec)
    body = functools.partial(
        _round, keys=keys, factor=factor, val=val, bounds=bounds, search_key=search_key, spec=spec
    )
    if spec.method == "pbt":  # same shapes every round: a loop
        index = jnp.arange(spec.rounds, dtype=jnp.int32)
        pop, records = jax.lax.scan(body, pop, (index, blocks, keep))
    else:  # halving: a narrower batch every round, so the rounds are unrolled
        parts = []
        for r in range(spec.rounds):
            xs = (r, jax.tree.map(lambda x, r=r: x[r], blocks), keep[r])
            pop, record = body(pop, xs, width=spec.widths[r])
            parts.append(record)
        records = jax.tree.map(lambda *xs: jnp.stack(xs), *parts)
    return _engine.replicate((records, _final(pop)), out_sharding)


@functools.partial(jax.jit, static_argnames=("spec",))
def tune_start(params, state, keys, bounds, search_key, *, spec):
    """The initial population (streamed runs)."""
    return _start(params, state, keys, bounds, search_key, spec)


@functools.partial(jax.jit, static_argnames=(*_STATIC, "width"), donate_argnums=(0,))
def tune_round(
    pop, r, data, keep, keys, factor, val, bounds, search_key, *, spec, out_sharding, width
):
    """One round (streamed runs): ``(population, record)``; one program per ``width``
    (the members computed: halving's narrow with the rounds, PBT's are all of them)."""
    pop, record = _round(pop, (r, data, keep), keys, factor, val, bounds, search_key, spec, width)
    return pop, _engine.replicate(record, out_sharding)


@functools.partial(jax.jit, static_argnames=_STATIC)
def tune_final(pop, *, spec, out_sharding):
    """The best member and the final scores (streamed runs)."""
    return _engine.replicate(_final(pop), out_sharding)


# ------------------------------------------------------------- host side


class SearchResult(NamedTuple):
    """Host (NumPy) results of :func:`run_search`.

    Attributes:
      history: a :class:`Round` of arrays with a leading round axis ``[R, P, ...]``.
      final: the :class:`Final` of the search.
    """

    history: Round
    final: Final


@dataclasses.dataclass(frozen=True)
class _Search:
    """A search as the runner's :class:`~lrjax._engine.RoundsProgram`: its compiled
    programs (:func:`tune_search`, or :func:`tune_start`, :func:`tune_round`,
    :func:`tune_final` when streamed) with their inputs on the devices."""

    spec: SearchSpec
    place: Any
    params: Any
    state: Any
    keys: Any
    keep: np.ndarray
    factor: np.ndarray
    val: Any
    bounds: Any
    search_key: Any

    def _args(self) -> dict:
        return dict(factor=self.factor, val=self.val, bounds=self.bounds,
                    search_key=self.search_key)  # fmt: skip

    def whole(self, blocks):
        return tune_search(
            self.params, self.state, self.keys, blocks, self.place.shared(self.keep),
            spec=self.spec, out_sharding=self.place.out_sharding, **self._args(),
        )  # fmt: skip

    def start(self):
        return tune_start(self.params, self.state, self.keys, self.bounds, self.search_key,
                          spec=self.spec)  # fmt: skip

    def round(self, carry, r, data):
        return tune_round(
            carry, jnp.int32(r), data, self.place.shared(self.keep[r]), self.keys,
            spec=self.spec, out_sharding=self.place.out_sharding, width=self.spec.widths[r],
            **self._args(),
        )  # fmt: skip

    def final(self, carry):
        return tune_final(carry, spec=self.spec, out_sharding=self.place.out_sharding)


def run_search(
    prepared: _engine.Prepared,
    make_tx: _engine.Static,
    names: tuple[str, ...],
    kinds: tuple[str, ...],
    bounds: dict[str, np.ndarray],
    *,
    method: str,
    population: int,
    rounds: int,
    num_steps: int,
    diverge_factor: float,
    cooldown: int = 0,
    mesh: Mesh | None = None,
    progress: bool | None = None,
    description: str = "tune",
) -> SearchResult:
    """Runs a search: one program with in-memory data, a program per round when streamed.

    Args:
      prepared: the model, data and key from :func:`lrjax._engine.prepare`.
      make_tx: a :class:`Static` ``(h, step) -> GradientTransformation``.
      names: the hyperparameter names.
      kinds: each name's kind (see :data:`KINDS`).
      bounds: ``{name: array}``: ``[low, high]``, or the options of a choice.
      method: ``"pbt"`` or ``"halving"``.
      population: the number of members.
      rounds: the number of rounds (divides ``num_steps``).
      num_steps: training steps per member.
      diverge_factor: freeze a member when its smoothed loss exceeds this x its best.
      cooldown: steps of the cooldown probe between rounds (0: none; at most a round).
      mesh: shard the members over this mesh (``population`` a multiple of its size).
      progress: ``True``/``None``: report after a delay (a bar or plain lines); ``False``: not.
      description: the progress bar's label.
    """
    source, model, val = prepared.source, prepared.model, prepared.val
    L = num_steps // rounds
    place = _engine.Placement(mesh)
    copy_sharding = None
    if mesh is not None:
        copy_sharding = NamedSharding(mesh, PartitionSpec(None, tuple(mesh.axis_names)))
    spec = SearchSpec(
        kernel=_engine.Spec(
            behaviour=model.behaviour,
            make_tx=make_tx,
            batch_fn=source.batch_fn,
            num_steps=num_steps,
            block=L,
            evaluate=val is not None,
            return_params=False,
            seeded=False,
        ),
        names=tuple(names),
        kinds=tuple(kinds),
        method=method,
        population=population,
        rounds=rounds,
        cooldown=cooldown,
        widths=round_widths(method, population, rounds, 1 if mesh is None else mesh.devices.size),
        copy_sharding=copy_sharding,
    )
    member_key, search_key = split_key(prepared.key)
    index = np.arange(population, dtype=np.uint32)[None]  # member i folds i into the key
    program = _Search(
        spec=spec,
        place=place,
        params=place.shared(model.params),
        state=place.shared(model.state),
        keys=place.copies(np.asarray(_engine.copy_keys(member_key, index)), axis=1),
        keep=keep_counts(population, rounds),
        factor=np.asarray(diverge_factor, float_dtype()),
        val=place.shared(val) if val is not None else None,
        bounds=place.shared(bounds),
        search_key=place.shared(search_key),
    )
    history, final = _engine.run_rounds(
        prepared, program, rounds=rounds, num_steps=num_steps, place=place,
        progress=progress, description=description,
    )  # fmt: skip
    behaviour = model.behaviour  # the best member's parameters in the user's form
    final = final._replace(
        params=behaviour.user_params(final.params), state=behaviour.user_state(final.state)
    )
    return SearchResult(history=history, final=final)


def check_population_on_mesh(population: int, mesh: Mesh | None) -> None:
    """Raises ValueError unless ``population`` splits evenly over ``mesh``'s devices."""
    if mesh is not None and population % mesh.devices.size:
        n = mesh.devices.size
        raise ValueError(
            f"population={population} must be a multiple of the mesh's {n} devices to be "
            f"sharded over them (e.g. population={math.ceil(population / n) * n})"
        )
