"""The method-agnostic search: members trained in rounds, scored, changed.

:func:`lrjax.tune` trains a population of ``P`` members side by side with the
engine's kernel (``init_copies``, ``train_copies``: divergence freezing,
evaluation, the ``vmap`` over copies), in ``R`` rounds of ``L`` steps. Each
round gathers the members still training into a batch of the round's static
width (the method's ``training``), trains it, scores it (after a cooldown
probe, :mod:`._probe`) and scatters the results back; between rounds the
method's ``change`` moves the population (PBT copies and perturbs, halving
stops the worse half).

How the steps run is the engine strategy's choice. ``"scan"``: with the
batches in memory the whole search is one compiled program (a ``lax.scan``
over rounds when every round has the same width, the rounds unrolled when
they differ); streamed, one program per round width. ``"blocks"`` and
``"sequential"``: each round's steps are dispatched from the host, one step
per call, around small compiled programs that start and end the round
(:meth:`Search.host_round`). A second search of the same structure with other
ranges or another key compiles nothing: ranges and keys are traced inputs.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lrjax import _engine
from lrjax._checks import float_dtype
from lrjax._rules import training_score
from lrjax._search import _probe
from lrjax._search._method import Between, Method, rank_scores, take_copies
from lrjax._search._space import decode, initial_genes, split_key


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    """The static part of a search (hashable: one compilation per distinct spec).

    Attributes:
      kernel: the kernel's :class:`~lrjax._engine.Spec` for a round's steps.
      names: the hyperparameter names.
      kinds: each name's kind (``"uniform"``, ``"log"`` or ``"choice"``).
      method: the :class:`~lrjax._search._method.Method`.
      population: the number of members ``P``.
      rounds: the number of rounds ``R``.
      round_steps: steps per round ``L``.
      validated: members are scored on evaluation data.
      cooldown: steps of the cooldown probe between rounds (0: none).
      widths: members computed in each round (see :func:`round_widths`).
      copy_sharding: the sharding of the carry's copy axis, or ``None``.
    """

    kernel: _engine.Spec
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    method: Method
    population: int
    rounds: int
    round_steps: int
    validated: bool = False
    cooldown: int = 0
    widths: tuple[int, ...] = ()
    copy_sharding: Any = None

    @property
    def probe(self) -> _engine.Spec:
        """The kernel spec of the cooldown probe."""
        return _probe.probe_spec(self.kernel, self.cooldown)

    def values(self, genes: dict, bounds: dict) -> dict:
        """What ``make_optimizer`` receives (options looked up)."""
        return decode(genes, bounds, self.names, self.kinds)


def round_widths(method: Method, population: int, rounds: int, devices: int = 1) -> tuple:
    """Members computed in each round: those training (the method's ``training``),
    rounded up to a multiple of ``devices`` so they split over a mesh.

    Example:
      >>> from lrjax._search._halving import HALVING
      >>> round_widths(HALVING, 16, 5), round_widths(HALVING, 16, 5, devices=4)
      ((16, 8, 4, 2, 1), (16, 8, 4, 4, 4))
    """
    return tuple(min(population, -(-n // devices) * devices)
                 for n in method.training(population, rounds))  # fmt: skip


def search_steps(method: Method, population: int, rounds: int, num_steps: int, cooldown: int):
    """Training steps a search costs: every round's members, and the cooldown probes
    after every round but the last.

    Example:
      >>> from lrjax._search._halving import HALVING
      >>> from lrjax._search._pbt import PBT
      >>> search_steps(PBT, 16, 8, 240, 0), search_steps(HALVING, 8, 3, 30, 2)
      (3840, 164)
    """
    widths = method.training(population, rounds)
    return (num_steps // rounds) * sum(widths) + cooldown * sum(widths[:-1])


# ---------------------------------------------------------- the population


class Population(NamedTuple):
    """What the search carries from round to round.

    Attributes:
      carry: the kernel's :class:`~lrjax._engine.Carry`, ``[1, P, ...]``.
      genes: ``{name: [P]}``: a number, or an option index for a choice.
      active: ``[P]`` bool: still training.
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


def _constrain(tree: Any, spec: SearchSpec) -> Any:
    if spec.copy_sharding is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, spec.copy_sharding)


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


def _idle_nan(idle: jax.Array, x: jax.Array) -> jax.Array:
    """``x`` ``[P, ...]`` with float entries NaN for idle members, integer and bool
    entries 0 (as :func:`_put_rows` fills them: the same whether or not a padded
    round width computed the member)."""
    mask = idle.reshape((idle.shape[0],) + (1,) * (x.ndim - 1))
    if jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
        return jnp.where(mask, jnp.zeros((), x.dtype), x)
    return _engine.nan_where(mask, x)


def _start(params, state, keys, bounds, search_key, spec: SearchSpec) -> Population:
    P = spec.population
    genes = initial_genes(spec.names, spec.kinds, bounds, search_key, P)
    hs = spec.values(genes, bounds)
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


def _score(carry, losses, val_score, spec: SearchSpec) -> jax.Array:
    """Each member's score: validation loss, else the mean of the last 10% of ``losses``."""
    raw = val_score if spec.validated else training_score(losses, jnp)
    return jnp.where(carry.stopped[0] | ~jnp.isfinite(raw), jnp.inf, raw).astype(float_dtype())


class Training(NamedTuple):
    """The members a round computes, gathered (see :func:`_begin`)."""

    carry: Any
    hs: Any
    keys: Any
    index: Any  # their slots, or None when every member is computed


def _begin(pop: Population, r, keys, bounds, spec: SearchSpec, width: int) -> Training:
    """The round's members (those still training first, ``width`` of them),
    reseeded for round ``r``."""
    hs = spec.values(pop.genes, bounds)
    start, sub_keys, index = pop.carry, keys, None
    if width < spec.population:
        index = jnp.argsort(~pop.active, stable=True)[:width]
        start, sub_keys = take_copies((start, keys), index)
        hs = jax.tree.map(lambda x: x[index], hs)
    start = _constrain(start._replace(state=_reseed(start.state, sub_keys, r, spec)), spec)
    return Training(start, hs, sub_keys, index)


def _end(pop: Population, r, bounds, search_key, spec: SearchSpec, index, trained, losses,
         aux, score) -> tuple[Population, Round]:  # fmt: skip
    """Scatters the round's results back (``index``: the slots computed, ``None``
    for all), records them and changes the population (not after the last round)."""
    P = spec.population
    last = r == spec.rounds - 1
    if index is not None:  # back to every slot: rows of members not computed are NaN
        trained = _put_copies(pop.carry, index, trained)
        losses, aux, score = _put_rows(index, P, (losses, aux, score))
    # Idle members (halving) keep what they had; their round is thrown away.
    carry = _constrain(_where_copies(pop.active, trained, pop.carry), spec)
    idle = ~pop.active
    record = Round(
        values=spec.values(pop.genes, bounds),
        genes=pop.genes,
        score=jnp.where(idle, jnp.nan, score),
        parent=pop.parent,
        active=pop.active,
        losses=_idle_nan(idle, losses),
        aux=jax.tree.map(lambda a: _idle_nan(idle, a), aux),
    )
    now = Between(carry, pop.genes, pop.active, score, r, bounds, search_key, spec.names,
                  spec.kinds, P, spec.rounds)  # fmt: skip
    changed = spec.method.change(now)
    pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(last, x, y), a, b)
    nxt = Population(
        carry=_constrain(pick(carry, changed.carry), spec),
        genes=pick(pop.genes, changed.genes),
        active=jnp.where(last, pop.active, changed.active),
        score=jnp.where(idle, pop.score, score),
        parent=jnp.where(last, jnp.arange(P, dtype=jnp.int32), changed.parent),
    )
    return nxt, record


def _probe_score(trained, data, t0, training: Training, factor, val, spec: SearchSpec):
    """Scores after a cooldown probe (see :mod:`._probe`), in the program."""
    K, L = spec.cooldown, spec.round_steps
    blocks = jax.tree.map(lambda x: x[None, L - K :], data)
    hs, t_probe = _probe.probe_inputs(training.hs, training.keys, t0, L, K)
    cooled, out = _engine.train_copies(
        trained, blocks, t_probe, hs, training.keys, factor, val, spec.probe
    )
    return _score(cooled, out.steps.loss[0, :, 0], out.val_score[0, :, 0], spec)


def _round(pop: Population, xs, keys, factor, val, bounds, search_key, spec: SearchSpec,
           width=None):  # fmt: skip
    """One round in the program (``"scan"``): train, score, change."""
    r, data = xs
    width = spec.population if width is None else width
    t0 = r * jnp.int32(spec.round_steps)
    training = _begin(pop, r, keys, bounds, spec, width)
    blocks = jax.tree.map(lambda x: x[None], data)
    trained, out = _engine.train_copies(training.carry, blocks, t0, training.hs, training.keys,
                                        factor, val, spec.kernel)  # fmt: skip
    # one seed row, one block: [width, L, ...]
    losses, aux = out.steps.loss[0, :, 0], jax.tree.map(lambda a: a[0, :, 0], out.steps.aux)
    score = _score(trained, losses, out.val_score[0, :, 0], spec)
    if spec.cooldown:  # between rounds, rank on what a member would reach if annealed now
        probe = lambda: _probe_score(trained, data, t0, training, factor, val, spec)
        last = r == spec.rounds - 1
        if isinstance(last, bool):  # an unrolled round: no probe after the last
            score = score if last else probe()
        else:
            score = jax.lax.cond(last, lambda: score, probe)
    return _end(pop, r, bounds, search_key, spec, training.index, trained, losses, aux, score)


def _final(pop: Population) -> Final:
    best = jnp.argmin(jnp.where(pop.active, rank_scores(pop.score), jnp.inf)).astype(jnp.int32)
    one = lambda tree: jax.tree.map(lambda x: x[0, best], tree)
    stop_step = pop.carry.stop_step[0]
    return Final(best, one(pop.carry.params), one(pop.carry.state), pop.score, stop_step)


# ------------------------------------------------------- compiled programs

_STATIC = ("spec", "out_sharding")


@functools.partial(jax.jit, static_argnames=_STATIC)
def search_whole(params, state, keys, blocks, factor, val, bounds, search_key, *, spec,
                 out_sharding):  # fmt: skip
    """The whole search in one program (data in memory): start, every round, the end."""
    pop = _start(params, state, keys, bounds, search_key, spec)
    body = functools.partial(
        _round, keys=keys, factor=factor, val=val, bounds=bounds, search_key=search_key, spec=spec
    )
    if len(set(spec.widths)) == 1:  # the same shapes every round: a loop
        index = jnp.arange(spec.rounds, dtype=jnp.int32)
        pop, records = jax.lax.scan(
            lambda p, xs: body(p, xs, width=spec.widths[0]), pop, (index, blocks)
        )
    else:  # a narrower batch in later rounds: the rounds unrolled
        parts = []
        for r in range(spec.rounds):
            pop, record = body(pop, (r, jax.tree.map(lambda x, r=r: x[r], blocks)),
                               width=spec.widths[r])  # fmt: skip
            parts.append(record)
        records = jax.tree.map(lambda *xs: jnp.stack(xs), *parts)
    return _engine.replicate((records, _final(pop)), out_sharding)


@functools.partial(jax.jit, static_argnames=("spec",))
def search_start(params, state, keys, bounds, search_key, *, spec):
    """The initial population (rounds called one by one)."""
    return _start(params, state, keys, bounds, search_key, spec)


@functools.partial(jax.jit, static_argnames=(*_STATIC, "width"), donate_argnums=(0,))
def search_round(pop, r, data, keys, factor, val, bounds, search_key, *, spec, out_sharding,
                 width):  # fmt: skip
    """One round (``"scan"``, streamed): ``(population, record)``; one program per
    ``width`` (the members computed in the round)."""
    pop, record = _round(pop, (r, data), keys, factor, val, bounds, search_key, spec, width)
    return pop, _engine.replicate(record, out_sharding)


@functools.partial(jax.jit, static_argnames=("spec", "width"))
def round_begin(pop, r, keys, bounds, *, spec, width):
    """The round's members gathered and reseeded (host-driven strategies)."""
    return _begin(pop, r, keys, bounds, spec, width)


@functools.partial(jax.jit, static_argnames=("spec",))
def round_score(carry, steps, val, *, spec):
    """The members' scores after a stretch of steps (host-driven strategies):
    evaluated on ``val``, or their training score."""
    val_score = _engine.evaluate_copies(carry, val, spec.kernel)[0] if spec.validated else None
    return _score(carry, steps.loss[0], val_score, spec)


@functools.partial(jax.jit, static_argnames=(*_STATIC,), donate_argnums=(0,))
def round_end(pop, r, bounds, search_key, index, trained, steps, score, *, spec,
              out_sharding):  # fmt: skip
    """Scatter, record and change after a host-driven round."""
    losses, aux = steps.loss[0], jax.tree.map(lambda a: a[0], steps.aux)
    pop, record = _end(pop, r, bounds, search_key, spec, index, trained, losses, aux, score)
    return pop, _engine.replicate(record, out_sharding)


@functools.partial(jax.jit, static_argnames=_STATIC)
def search_final(pop, *, spec, out_sharding):
    """The best member and the final scores (rounds called one by one)."""
    return _engine.replicate(_final(pop), out_sharding)


# ------------------------------------------------------------- host side


@dataclasses.dataclass(frozen=True)
class Search:
    """A search as the engine's :class:`~lrjax._engine.RoundsProgram`: its compiled
    programs with their inputs on the devices."""

    spec: SearchSpec
    place: Any
    params: Any
    state: Any
    keys: Any
    factor: np.ndarray
    val: Any
    bounds: Any
    search_key: Any

    def _args(self) -> dict:
        return dict(factor=self.factor, val=self.val, bounds=self.bounds,
                    search_key=self.search_key)  # fmt: skip

    def whole(self, blocks):
        return search_whole(self.params, self.state, self.keys, blocks, spec=self.spec,
                            out_sharding=self.place.out_sharding, **self._args())  # fmt: skip

    def start(self):
        return search_start(self.params, self.state, self.keys, self.bounds, self.search_key,
                            spec=self.spec)  # fmt: skip

    def round(self, carry, r, data):
        return search_round(carry, jnp.int32(r), data, self.keys, spec=self.spec,
                            out_sharding=self.place.out_sharding, width=self.spec.widths[r],
                            **self._args())  # fmt: skip

    def host_round(self, pop, r, train):
        """Round ``r`` from the host: gather, ``train`` the round's steps (and the
        probe's), score, then scatter, record and change."""
        spec, L, K = self.spec, self.spec.round_steps, self.spec.cooldown
        training = round_begin(pop, jnp.int32(r), self.keys, self.bounds, spec=spec,
                               width=spec.widths[r])  # fmt: skip
        t0 = r * L
        stage = _engine.Stage(training.carry, training.hs, training.keys, t0, spec.kernel)
        trained, steps = train(stage, 0, L)
        score = round_score(trained, steps, self.val, spec=spec)
        if K and r < spec.rounds - 1:
            hs, t_probe = _probe.probe_inputs(training.hs, training.keys, t0, L, K)
            probe = _engine.Stage(trained, hs, training.keys, t_probe, spec.probe)
            cooled, probe_steps = train(probe, L - K, K)
            score = round_score(cooled, probe_steps, self.val, spec=spec)
        return round_end(pop, jnp.int32(r), self.bounds, self.search_key, training.index,
                         trained, steps, score, spec=spec,
                         out_sharding=self.place.out_sharding)  # fmt: skip

    def final(self, carry):
        return search_final(carry, spec=self.spec, out_sharding=self.place.out_sharding)


class SearchResult(NamedTuple):
    """Host (NumPy) results of :func:`run_search`.

    Attributes:
      history: a :class:`Round` of arrays with a leading round axis ``[R, P, ...]``.
      final: the :class:`Final` of the search.
      strategy: the engine strategy that ran it.
    """

    history: Round
    final: Final
    strategy: str = "scan"


def run_search(
    prepared: _engine.Prepared,
    make_tx: _engine.Static,
    names: tuple[str, ...],
    kinds: tuple[str, ...],
    bounds: dict[str, np.ndarray],
    *,
    method: Method,
    population: int,
    rounds: int,
    num_steps: int,
    options: _engine.RunOptions,
    cooldown: int = 0,
    description: str = "tune",
) -> SearchResult:
    """Runs a search on the engine, the way ``options.strategy`` runs steps.

    Args:
      prepared: the model, data and key from :func:`lrjax._engine.prepare`.
      make_tx: a :class:`Static` ``(h, step) -> GradientTransformation``.
      names: the hyperparameter names.
      kinds: each name's kind.
      bounds: ``{name: array}``: ``[low, high]``, or the options of a choice.
      method: the search :class:`Method`.
      population: the number of members.
      rounds: the number of rounds (divides ``num_steps``).
      num_steps: training steps per member.
      options: divergence factor, mesh, progress and strategy.
      cooldown: steps of the cooldown probe between rounds (0: none; at most a round).
      description: the progress bar's label.
    """
    source, model, val = prepared.source, prepared.model, prepared.val
    mesh = options.mesh
    strategy = _engine.choose_strategy(options.strategy, prepared.facts, mesh)
    L = num_steps // rounds
    place = _engine.Placement(mesh)
    kernel = _engine.make_spec(
        model.behaviour, make_tx, source.batch_fn, num_steps=num_steps,
        block=1 if strategy.unroll else L, strategy=strategy, evaluate=val is not None,
    )  # fmt: skip
    spec = SearchSpec(
        kernel=kernel, names=tuple(names), kinds=tuple(kinds), method=method,
        population=population, rounds=rounds, round_steps=L, validated=val is not None,
        cooldown=cooldown, widths=round_widths(method, population, rounds, place.devices),
        copy_sharding=place.copy_sharding,
    )  # fmt: skip
    member_key, search_key = split_key(prepared.key)
    index = np.arange(population, dtype=np.uint32)[None]  # member i folds i into the key
    program = Search(
        spec=spec,
        place=place,
        params=place.shared(model.params),
        state=place.shared(model.state),
        keys=place.copies(np.asarray(_engine.copy_keys(member_key, index)), axis=1),
        factor=np.asarray(options.diverge_factor, float_dtype()),
        val=place.shared(val) if val is not None else None,
        bounds=place.shared(bounds),
        search_key=place.shared(search_key),
    )
    history, final = _engine.run_rounds(
        prepared, program, rounds=rounds, num_steps=num_steps, place=place, strategy=strategy,
        progress=options.progress, description=description,
    )  # fmt: skip
    behaviour = model.behaviour  # the best member's parameters in the user's form
    final = final._replace(
        params=behaviour.user_params(final.params), state=behaviour.user_state(final.state)
    )
    return SearchResult(history=history, final=final, strategy=strategy.name)
