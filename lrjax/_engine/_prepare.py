"""One input-preparation path for every front (range test, sweep, tune).

:func:`prepare` checks what the user passed and turns it into what the engine
runs: a :class:`~lrjax._engine._model.Model` (initial parameters with a seed
axis when there are several seeds, carried state, pure functions), a
:class:`~lrjax._engine._data.BatchSource`, host evaluation batches and the base
PRNG key. Errors name the argument and say what to do, in one line.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from lrjax._checks import check_bool, check_count, check_key, check_params
from lrjax._engine._data import BatchSource, prepare_val
from lrjax._engine._models import Model, is_model_object, make_model, stack_models


class StepFacts(NamedTuple):
    """What the runner's ``strategy="auto"`` reads off one traced training loss.

    Attributes:
      primitives: the names of every JAX primitive in it.
      flops: the multiply-adds of its matrix products and convolutions, x2
        (the forward pass of one copy on one batch).
    """

    primitives: frozenset[str] = frozenset()
    flops: float = 0.0


class Prepared(NamedTuple):
    """Everything a front hands to :func:`lrjax._engine.run`.

    Attributes:
      model: the model (``params``/``state`` with a leading seed axis if ``seeded``).
      seeded: whether there is a seed axis.
      seeds: the number of seeds.
      source: the training batches.
      val: evaluation batches (host arrays, leading batch axis) or ``None``.
      key: the base PRNG key as raw ``uint32[2]`` data.
      facts: what one training step's loss holds (the runner's ``strategy="auto"``
        reads it).
    """

    model: Model
    seeded: bool
    seeds: int
    source: BatchSource
    val: Any
    key: np.ndarray
    facts: StepFacts = StepFacts()


def _seed_model(
    loss_fn, params, init_fn, seeds, *, state, eval_fn, has_aux, trainable=None, models=None
) -> tuple[Model, bool]:
    seeds = check_count("seeds", seeds, minimum=1)
    build = lambda p, s=state: make_model(
        loss_fn, p, state=s, eval_fn=eval_fn, has_aux=has_aux, trainable=trainable
    )
    if models is not None:  # one (model, state) per seed, built by the front
        model = stack_models([build(m, s) for m, s in models], "the model of each seed")
        check_params(model.behaviour.trained(model.params), "the models' parameters")
        return model, True
    if init_fn is None:
        if seeds > 1:
            raise ValueError(
                f"seeds={seeds} needs init_fn (key -> params) to draw the initialisations"
            )
        if params is None:
            raise ValueError("params is None: pass initial params or init_fn")
        model = build(params)
        check_params(model.behaviour.trained(model.params))
        return model, False
    if not callable(init_fn):
        raise TypeError(f"init_fn must be a callable key -> params, got {init_fn!r}")
    if is_model_object(params):
        raise TypeError(
            "init_fn draws plain parameter pytrees; for a Flax or Equinox model pass the model "
            "as params (use seeds=1)"
        )
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    stacked = jax.vmap(init_fn)(keys)
    check_params(stacked, "init_fn(key)")
    if params is not None and jax.tree.structure(params) != jax.tree.structure(stacked):
        raise ValueError(
            "params and init_fn(key) have different tree structures: "
            f"{jax.tree.structure(params)} vs {jax.tree.structure(stacked)}"
        )
    if state is not None:  # every initialisation starts from the same state
        state = jax.tree.map(lambda x: jnp.broadcast_to(x, (seeds, *jnp.shape(x))), state)
    return build(stacked, state), True


def _short(x: Any) -> str:
    try:
        return f"{jnp.result_type(x)}{list(np.shape(x))}"
    except Exception:
        return type(x).__name__


def _check_scalar(out: Any, who: str, has_aux: bool) -> None:
    if not isinstance(out, jax.ShapeDtypeStruct):
        hint = "" if has_aux else "; return the loss alone, or pass has_aux=True for (loss, aux)"
        raise ValueError(
            f"{who} must return a scalar array, got a {type(out).__name__} "
            f"({jax.tree.structure(out)}){hint}"
        )
    if out.shape != ():
        raise ValueError(f"{who} must return a scalar, got shape {out.shape}; reduce it (.mean())")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{who} must return a float scalar, got dtype {out.dtype}")


def _eqn_flops(eqn: Any) -> float:
    """FLOPs of a ``dot_general`` or ``conv_general_dilated`` equation (0 for others)."""
    name = eqn.primitive.name
    if name not in ("dot_general", "conv_general_dilated"):
        return 0.0
    out = eqn.outvars[0].aval.shape
    if name == "dot_general":
        (contract, _), _ = eqn.params["dimension_numbers"]
        lhs = eqn.invars[0].aval.shape
        return 2.0 * math.prod(out) * math.prod(lhs[d] for d in contract)
    if name == "conv_general_dilated":
        rhs = eqn.invars[1].aval.shape
        spec = eqn.params["dimension_numbers"].rhs_spec  # (out features, in features, *spatial)
        window = math.prod(rhs[d] for d in spec[1:])
        return 2.0 * math.prod(out) * window
    return 0.0


def step_facts(jaxpr: Any) -> StepFacts:
    """The :class:`StepFacts` of a (closed) jaxpr, its sub-jaxprs included."""
    names: set[str] = set()
    flops = 0.0
    stack = [jaxpr.jaxpr if hasattr(jaxpr, "jaxpr") else jaxpr]
    while stack:
        for eqn in stack.pop().eqns:
            names.add(eqn.primitive.name)
            flops += _eqn_flops(eqn)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                stack.append(sub)
    return StepFacts(frozenset(names), flops)


def _uses_inputs(jaxpr: Any, first: int, count: int) -> bool:
    """Whether output 0 of a closed jaxpr may depend on inputs ``first .. first+count-1``
    (an equation's outputs count as depending on all of its inputs: never a false no)."""
    inner = jaxpr.jaxpr
    reached = set(inner.invars[first : first + count])
    for eqn in inner.eqns:
        if any(not isinstance(v, jax.extend.core.Literal) and v in reached for v in eqn.invars):
            reached.update(eqn.outvars)
    out = inner.outvars[0]
    return not isinstance(out, jax.extend.core.Literal) and out in reached


def _trace(fn: Callable[..., Any], args: tuple, what: str) -> tuple[Any, Any]:
    """``fn``'s jaxpr and output shapes on ``args``, with a one-line error saying
    what to check."""
    try:
        jaxpr, shapes = jax.make_jaxpr(fn, return_shape=True)(*args)
    except (TypeError, ValueError) as e:
        kind = TypeError if isinstance(e, TypeError) else ValueError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise kind(f"{what} failed on one batch: {first[:300]}") from e
    except Exception as e:
        if type(e).__name__ != "TraceContextError":
            raise  # the user's own error, as they raised it
        # A Flax model mutating state lrjax does not carry (e.g. a Variable it
        # keeps outside the module, or an nnx.Module captured by loss_fn).
        raise ValueError(
            f"{what} mutates Flax state of a module it closes over, not of the model passed "
            "as params; compute the loss from the model loss_fn receives as its first argument"
        ) from e
    return jaxpr, shapes


def _check_uses_params(jaxpr: Any, n_params: int, what: str) -> None:
    """Raises ValueError when the loss (output 0) does not depend on the trained
    parameters (the first ``n_params`` inputs): a loss closing over the model."""
    if not _uses_inputs(jaxpr, 0, n_params):
        raise ValueError(
            f"{what}: the loss does not depend on the parameters it is given (a closure over "
            "the model?); compute it from the model or params passed as loss_fn's first argument"
        )


def check_model(model: Model, seeded: bool, example: Any, val: Any) -> StepFacts:
    """Traces the loss (and the evaluation) once on one batch: clear errors now.

    Returns:
      The loss's :class:`StepFacts`.
    """
    one = (lambda t: jax.tree.map(lambda x: x[0], t)) if seeded else (lambda t: t)
    params, state = one(model.params), one(model.state)
    b = model.behaviour
    if not callable(b.loss_fn):
        raise TypeError(f"loss_fn must be callable (params, batch) -> scalar, got {b.loss_fn!r}")
    stateful = b.stateful
    first = b.first_arg
    form = f"loss_fn({first}, state, batch)" if stateful else f"loss_fn({first}, batch)"
    try:
        with_key = lambda p, s, x: b.loss(p, s, x, jax.random.key(0))
        args = (params, state, example)
        jaxpr, (loss, new_state, _) = _trace(with_key, args, form)
    except TypeError as e:
        if stateful and any(w in str(e) for w in ("unpack", "iterat")):
            raise TypeError(
                "with state=, loss_fn(params, state, batch) must return (loss, new_state)"
            ) from None
        raise
    _check_scalar(loss, "loss_fn", b.has_aux)
    _check_uses_params(jaxpr, len(jax.tree.leaves(params)), form)
    if jax.tree.structure(new_state) != jax.tree.structure(state):
        raise ValueError(
            "loss_fn(params, state, batch) must return (loss, new_state) with new_state shaped "
            "like state"
        )
    facts = step_facts(jaxpr)
    if val is not None:
        vb = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), val)
        what = "eval_fn" if b.eval_fn is not None else "loss_fn"
        _, score = _trace(b.evaluate, (params, state, vb), f"{what} on one of val_batches")
        _check_scalar(
            score, "eval_fn" if b.eval_fn is not None else "loss_fn on val_batches", False
        )
    return facts


def prepare_data(batches: Any, val_batches: Any = None) -> tuple[BatchSource, Any]:
    """The training batches as a :class:`BatchSource` and the evaluation batches as
    host arrays: read once, for several :func:`prepare` calls (``data=``) that
    train on the same batches (a stream's batches are kept as they are read)."""
    return BatchSource(batches), prepare_val(val_batches)


@functools.partial(jax.jit, static_argnames=("behaviour",))
def _loss_and_grad(params: Any, state: Any, batch: Any, *, behaviour: Any) -> Any:
    """One copy's loss and its gradient on one batch (what :func:`step_flops` counts)."""
    loss = lambda p: behaviour.loss(p, state, batch, jax.random.key(0))[0]
    return jax.value_and_grad(loss)(params)


def step_flops(prepared: Prepared) -> float:
    """XLA's count of the floating-point operations of one training step of one
    copy on one batch: the loss and its gradient (the optimizer's update, a few
    operations per parameter, left out). From the lowered program's cost
    analysis: nothing is compiled or run."""
    model, seeded = prepared.model, prepared.seeded
    one = (lambda t: jax.tree.map(lambda x: x[0], t)) if seeded else (lambda t: t)
    shape = lambda t: jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), x.dtype), t)
    args = (shape(one(model.params)), shape(one(model.state)), prepared.source.example)
    cost = _loss_and_grad.lower(*args, behaviour=model.behaviour).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float((cost or {}).get("flops", math.nan))


def prepare(
    loss_fn: Callable[..., Any],
    params: Any,
    batches: Any,
    *,
    seeds: int = 1,
    init_fn: Callable[[jax.Array], Any] | None = None,
    state: Any = None,
    eval_fn: Callable[..., Any] | None = None,
    has_aux: bool = False,
    val_batches: Any = None,
    key: Any = None,
    trainable: Any = None,
    models: Any = None,
    data: tuple[BatchSource, Any] | None = None,
) -> Prepared:
    """Checks the user's model, data and randomness; see :class:`Prepared`.

    ``models``: instead of ``params`` / ``init_fn``, one ``(model, state)`` per
    seed (``state`` ``None`` without one), built by the front (each seed's
    initialisation of a model object); ``seeds`` is then their number.
    ``data``: ``(source, val)`` from :func:`prepare_data`, instead of
    ``batches`` and ``val_batches`` (runs that share one stream).
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (params, batch) -> scalar, got {loss_fn!r}")
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError(f"eval_fn must be callable (params, batch) -> scalar, got {eval_fn!r}")
    check_bool("has_aux", has_aux)
    raw_key = check_key(key)
    if models is not None:
        seeds = len(models)
    model, seeded = _seed_model(
        loss_fn, params, init_fn, seeds, state=state, eval_fn=eval_fn, has_aux=has_aux,
        trainable=trainable, models=models,
    )  # fmt: skip
    source, val = prepare_data(batches, val_batches) if data is None else data
    facts = check_model(model, seeded, source.example, val)
    return Prepared(model, seeded, int(seeds), source, val, raw_key, facts)
