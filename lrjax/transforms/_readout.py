"""Reading the learning rate in force out of an optimizer state, however nested."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax._checks import concrete
from lrjax.transforms._adabound import AdaBoundState
from lrjax.transforms._bold_driver import BoldDriverState
from lrjax.transforms._plateau import ReduceOnPlateauState

# Optax's contrib plateau transform keeps its factor in ``scale`` too.
_SCALE_STATES: tuple[type, ...] = (ReduceOnPlateauState, BoldDriverState)
try:
    from optax.contrib import ReduceLROnPlateauState as _OptaxPlateauState

    _SCALE_STATES += (_OptaxPlateauState,)
except ImportError:  # pragma: no cover - older optax
    pass

_INJECT_STATES = (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState)

# A state restored without a target (``flax.serialization.to_state_dict``, Orbax's
# ``restore(path)``) is plain dicts and lists: each NamedTuple is a dict keyed by
# its field names, which is what identifies it then.
_SCALE_FIELDS = tuple(frozenset(t._fields) for t in _SCALE_STATES)
_INJECT_FIELDS = tuple(frozenset(t._fields) for t in _INJECT_STATES)
_ADABOUND_FIELDS = frozenset(AdaBoundState._fields)
_MULTI_FIELDS = frozenset(optax.MultiTransformState._fields)
_COUNT_FIELDS = frozenset(optax.ScaleByScheduleState._fields)


class _Untyped(NamedTuple):
    path: str
    reason: str


def _is_multi(state: Any) -> bool:
    if isinstance(state, optax.MultiTransformState):
        return True
    return (
        _is_plain_dict(state)
        and frozenset(state) == _MULTI_FIELDS
        and isinstance(state["inner_states"], Mapping)
    )


def _is_plain_dict(node: Any) -> bool:
    return isinstance(node, Mapping) and not hasattr(node, "_fields")


def _is_scalar(x: Any) -> bool:
    return not isinstance(x, (Mapping, list, tuple)) and jnp.ndim(x) == 0


class _Found(NamedTuple):
    scope: tuple[str, ...]  # the multi_transform labels above it
    path: str
    value: Any


def _walk(state: Any, path: tuple[str, ...], scope: tuple[str, ...], visit) -> None:
    """Depth-first, outermost first: calls ``visit(node, path, scope)`` on every node."""
    visit(state, path, scope)
    if _is_multi(state):
        inner_states = state["inner_states"] if _is_plain_dict(state) else state.inner_states
        for label, inner in inner_states.items():
            _walk(inner, (*path, "inner_states", str(label)), (*scope, str(label)), visit)
    elif isinstance(state, tuple) and hasattr(state, "_fields"):
        for name in state._fields:
            _walk(getattr(state, name), (*path, name), scope, visit)
    elif isinstance(state, (tuple, list)):
        for i, inner in enumerate(state):
            _walk(inner, (*path, str(i)), scope, visit)
    elif isinstance(state, Mapping):
        for key, inner in state.items():
            _walk(inner, (*path, str(key)), scope, visit)


def _collect(
    opt_state: Any, name: str
) -> tuple[list[_Found], list[_Found], list[_Found], list[tuple[str, ...]]]:
    """The recorded values of ``name``, the scale factors, the step counts and the scopes."""
    values: list[_Found] = []
    scales: list[_Found] = []
    counts: list[_Found] = []
    scopes: list[tuple[str, ...]] = [()]
    untyped: list[_Untyped] = []
    plain_counts: list[_Found] = []

    def visit(node: Any, path: tuple[str, ...], scope: tuple[str, ...]) -> None:
        where = "/".join(path) or "<root>"
        if scope not in scopes:
            scopes.append(scope)
        if _is_plain_dict(node):
            visit_dict(node, where, scope)
        elif isinstance(node, _INJECT_STATES) and name in node.hyperparams:
            values.append(_Found(scope, f"{where}/hyperparams/{name}", node.hyperparams[name]))
        elif name == "learning_rate" and isinstance(node, AdaBoundState):
            values.append(_Found(scope, f"{where}/learning_rate", node.learning_rate))
        elif isinstance(node, _SCALE_STATES):
            scales.append(_Found(scope, f"{where}/scale", node.scale))
        elif isinstance(node, optax.ScaleByScheduleState):
            counts.append(_Found(scope, f"{where}/count", node.count))

    def visit_dict(node: Mapping, where: str, scope: tuple[str, ...]) -> None:
        keys = frozenset(str(k) for k in node)
        if keys in _INJECT_FIELDS and isinstance(node["hyperparams"], Mapping):
            if name in node["hyperparams"]:
                found = node["hyperparams"][name]
                values.append(_Found(scope, f"{where}/hyperparams/{name}", found))
        elif name == "learning_rate" and keys == _ADABOUND_FIELDS:
            values.append(_Found(scope, f"{where}/learning_rate", node["learning_rate"]))
        elif keys in _SCALE_FIELDS and _is_scalar(node["scale"]):
            scales.append(_Found(scope, f"{where}/scale", node["scale"]))
        elif keys == _COUNT_FIELDS and _is_scalar(node["count"]):
            # several optax states are just a count; all count the same updates
            plain_counts.append(_Found(scope, f"{where}/count", node["count"]))
        elif "scale" in keys and _is_scalar(node["scale"]):
            untyped.append(_Untyped(where, "a 'scale' of an unknown state"))
        elif "hyperparams" in keys:
            untyped.append(_Untyped(where, "'hyperparams' of an unknown state"))

    _walk(opt_state, (), (), visit)
    if untyped:
        first = untyped[0]
        raise ValueError(
            f"cannot tell what {first.reason} at {first.path} is in this plain-dict state: "
            "restore the checkpoint with a target (e.g. restore(path, target=opt_state))"
        )
    known = [concrete(c.value) for c in plain_counts]
    if len({k.item() for k in known if k is not None}) > 1:
        raise ValueError(
            f"the step counts at {[c.path for c in plain_counts]} differ: restore the "
            "checkpoint with a target (e.g. restore(path, target=opt_state))"
        )
    return values, scales, counts + plain_counts, scopes


def _within(scope: tuple[str, ...], outer: tuple[str, ...]) -> bool:
    return scope[: len(outer)] == outer


def _resolve(
    values: list[_Found], scales: list[_Found], scopes: list[tuple[str, ...]]
) -> jax.Array | dict[str, jax.Array]:
    """The value in force for each innermost scope, times the scales over it.

    In each scope the outermost entry wins (``inject_hyperparams(adabound)``
    records the rate twice); a scope without an entry inherits its parent's.
    One scalar when every scope resolves to the same entry and scales (the
    usual case), else a dict keyed by the ``/``-joined multi_transform labels.
    """
    first: dict[tuple[str, ...], _Found] = {}
    for f in values:
        first.setdefault(f.scope, f)
    leaves = [s for s in scopes if not any(o != s and _within(o, s) for o in scopes)]
    resolved: dict[tuple[str, ...], tuple[_Found, tuple[int, ...]]] = {}
    for leaf in leaves:
        enclosing = [scope for scope in first if _within(leaf, scope)]
        if not enclosing:  # e.g. an optax.set_to_zero branch: no rate there
            continue
        applied = tuple(i for i, s in enumerate(scales) if _within(leaf, s.scope))
        resolved[leaf] = (first[max(enclosing, key=len)], applied)

    def value(entry: _Found, applied: tuple[int, ...]) -> jax.Array:
        v = jnp.asarray(entry.value)
        for i in applied:
            v = v * jnp.asarray(scales[i].value).astype(v.dtype)
        return v

    kinds = {(id(entry), applied) for entry, applied in resolved.values()}
    if len(kinds) == 1:
        return value(*next(iter(resolved.values())))
    return {"/".join(leaf): value(*r) for leaf, r in resolved.items()}


def get_learning_rate(
    opt_state: Any,
    base_lr: float | Callable[[jax.Array], jax.Array] | None = None,
) -> jax.Array | dict[str, jax.Array]:
    """The learning rate in force, read from an optimizer state, however nested.

    The state is searched, however deeply nested (``optax.chain``,
    ``optax.inject_hyperparams``, ``optax.multi_transform``, ``optax.masked``,
    ``optax.MultiSteps``, ``optax.apply_if_finite``, ...), for:

    - the rate itself: ``hyperparams["learning_rate"]`` of an
      ``inject_hyperparams`` state, or an :func:`lrjax.adabound` state. When one
      scope holds several (``inject_hyperparams(lrjax.adabound)``), the
      outermost is the one in force.
    - scale factors: :func:`lrjax.reduce_on_plateau`, :func:`lrjax.bold_driver`
      and ``optax.contrib.reduce_on_plateau``; the rate is multiplied by every
      scale in its scope.

    An optimizer built with a plain number (``optax.adam(1e-3)``) does not
    record its rate: pass it as ``base_lr`` (it is then multiplied by the
    scales). ``base_lr`` may also be the schedule the optimizer was built with
    (``optax.adam(schedule)``); it is evaluated at the step of the latest
    update, read from the state's ``ScaleByScheduleState`` count. A rate
    recorded in the state takes precedence over ``base_lr``.

    The value returned is the rate of the latest update (after ``init``, the
    rate the first update will use), the value Optax's ``inject_hyperparams``
    records. Per-layer multipliers of :func:`lrjax.scale_by_layer` are not
    included: the result is the rate before them.

    A state restored from a checkpoint without a target (plain dicts and lists:
    ``flax.serialization.to_state_dict(opt_state)``, Orbax's ``restore(path)``)
    is read too: the states above are recognised there by their field names
    (and ``optax.multi_transform`` by its ``inner_states``). A plain dict with a
    scalar ``scale`` or with ``hyperparams`` that matches none of them is an
    error, not a guess: restore such a checkpoint with a target.

    Args:
      opt_state: an optimizer state.
      base_lr: the rate, or schedule, of an optimizer whose state does not
        record it.

    Returns:
      A scalar array; or, when ``optax.multi_transform`` branches carry rates
      of their own, a dict ``{label: rate}`` (nested labels joined by ``/``).

    Raises:
      ValueError: no rate is recorded and no ``base_lr`` is given; or a plain-dict
        state holds a scale or hyperparameters of a state it cannot identify.

    Example:
      >>> import jax.numpy as jnp, optax, lrjax
      >>> tx = optax.inject_hyperparams(optax.adam)(learning_rate=lrjax.cosine(1e-3, 100))
      >>> params = {"w": jnp.ones(2)}
      >>> state = tx.init(params)
      >>> for _ in range(51):
      ...     _, state = tx.update(params, state)
      >>> round(float(lrjax.get_learning_rate(state)), 7)   # the rate of step 50
      0.0005
      >>> tx = optax.chain(optax.adam(1e-3), lrjax.reduce_on_plateau())
      >>> float(lrjax.get_learning_rate(tx.init(params), base_lr=1e-3))
      0.0010000000474974513
    """
    values, scales, counts, scopes = _collect(opt_state, "learning_rate")
    if base_lr is not None and not any(f.scope == () for f in values):
        values.append(_Found((), "base_lr", _base_rate(base_lr, counts)))
    if not values:
        where = f" (found scale factors at {[s.path for s in scales]})" if scales else ""
        raise ValueError(
            "no learning rate is recorded in this optimizer state"
            f"{where}: build the optimizer with optax.inject_hyperparams, "
            "or pass the rate it was built with as base_lr"
        )
    return _resolve(values, scales, scopes)


def _base_rate(base_lr: Any, counts: list[_Found]) -> jax.Array:
    if not callable(base_lr):
        if isinstance(base_lr, (str, bytes, bool)):
            raise TypeError(f"base_lr must be a number or a schedule, got {base_lr!r}")
        return jnp.asarray(base_lr, dtype=float)
    if not counts:
        raise ValueError(
            "base_lr is a schedule, but the state has no step count to evaluate it at "
            "(no optax ScaleByScheduleState): pass the rate as a number"
        )
    count = jnp.asarray(counts[0].value)
    # The latest update used the schedule at count - 1; at init the next one uses step 0.
    return jnp.asarray(base_lr(jnp.maximum(count - 1, 0)), dtype=float)


def get_hyperparam(opt_state: Any, name: str) -> jax.Array | dict[str, jax.Array]:
    """The value of an ``optax.inject_hyperparams`` hyperparameter, wherever it sits.

    Searches the state like :func:`get_learning_rate` for
    ``hyperparams[name]`` (``"b1"``, ``"weight_decay"``, ``"momentum"``, ...);
    no scale factor is applied.

    Args:
      opt_state: an optimizer state.
      name: the hyperparameter's name.

    Returns:
      A scalar array, or a dict ``{label: value}`` when ``optax.multi_transform``
      branches record values of their own.

    Raises:
      ValueError: no injected hyperparameter of that name; the message lists the
        names that are there.

    Example:
      >>> import jax.numpy as jnp, optax, lrjax
      >>> tx = optax.inject_hyperparams(optax.adamw)(learning_rate=1e-3, weight_decay=0.05)
      >>> round(float(lrjax.get_hyperparam(tx.init({"w": jnp.ones(2)}), "weight_decay")), 6)
      0.05
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {name!r}")
    values, _, _, scopes = _collect(opt_state, name)
    if not values:
        available: set[str] = set()

        def visit(node: Any, path: tuple[str, ...], scope: tuple[str, ...]) -> None:
            if isinstance(node, _INJECT_STATES):
                available.update(node.hyperparams)

        _walk(opt_state, (), (), visit)
        raise ValueError(
            f"no injected hyperparameter named {name!r} in this optimizer state; "
            f"the injected ones are {sorted(available)}"
        )
    return _resolve(values, [], scopes)
