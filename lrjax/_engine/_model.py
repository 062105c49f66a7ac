"""What the engine trains: one functional form for plain JAX, stateful JAX, NNX, Linen, Equinox.

The engine sees a :class:`Model`: trained ``params``, carried ``state`` (BatchNorm
statistics, RNG counters, any non-parameter variable; ``()`` when there is none)
and a hashable behaviour object whose methods are pure functions of arrays:

- ``loss(params, state, batch, key) -> (loss, new_state, aux)``, where ``key`` is
  the copy's typed PRNG key for this step;
- ``evaluate(params, state, batch) -> scalar``, the evaluation score (eval mode);
- ``seed(state, key) -> state``, the copy's own random streams.

Randomness by parameter name: a ``loss_fn`` or ``eval_fn`` that declares a
parameter ``key`` receives the copy's PRNG key for the step, one that declares
``rngs`` an ``nnx.Rngs`` made from it (NNX models only); both are ``None`` at
evaluation. :func:`random_args` reads the signature once; the behaviours keep
the names (``loss_random``, ``eval_random``) and :func:`random_kwargs` fills them.

The behaviour objects compare by value (the user's functions by identity, Flax
graph definitions by structure), so a second call with the same functions and
shapes reuses the compiled program. The user's model object is never mutated:
NNX modules are split into new states and re-created inside every trace.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import sys
import types
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Model(NamedTuple):
    """A model in the engine's form (see the module docstring)."""

    params: Any
    state: Any
    behaviour: Any


def _split_aux(out: Any, has_aux: bool, who: str) -> tuple[Any, Any]:
    if not has_aux:
        return out, ()
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError(
            f"{who} with has_aux=True must return (loss, aux), got {type(out).__name__}"
        )
    return out


#: The parameter names through which ``loss_fn`` / ``eval_fn`` ask for randomness.
RANDOM_ARGS = ("key", "rngs")


def random_args(fn: Callable[..., Any] | None) -> tuple[str, ...]:
    """The names of :data:`RANDOM_ARGS` that ``fn`` declares (read once, by signature)."""
    if fn is None:
        return ()
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no named parameters to fill
        return ()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(n for n in RANDOM_ARGS if n in params and params[n].kind in named)


def random_kwargs(names: tuple[str, ...], key: Any) -> dict[str, Any]:
    """The keyword arguments for :func:`random_args`' ``names``: ``key`` the step's
    PRNG key, ``rngs`` an ``nnx.Rngs(key)`` (every stream name reads from it);
    ``None`` for both when ``key`` is ``None`` (evaluation)."""
    out: dict[str, Any] = {}
    for name in names:
        if key is None:
            out[name] = None
        elif name == "key":
            out[name] = key
        else:
            from flax import nnx

            out[name] = nnx.Rngs(key)
    return out


class _AsGiven:
    """Parameters and state are carried in the form the user gave them."""

    def user_params(self, params: Any) -> Any:
        return params

    def user_state(self, state: Any) -> Any:
        return state


@dataclasses.dataclass(frozen=True)
class Plain(_AsGiven):
    """``loss_fn(params, batch)`` (or ``(params, state, batch) -> (loss, state)``)."""

    loss_fn: Callable[..., Any]
    eval_fn: Callable[..., Any] | None
    has_aux: bool
    stateful: bool
    loss_random: tuple[str, ...] = ()
    eval_random: tuple[str, ...] = ()

    def loss(self, params, state, batch, key):
        kw = random_kwargs(self.loss_random, key)
        if self.stateful:
            out, new_state = self.loss_fn(params, state, batch, **kw)
        else:
            out, new_state = self.loss_fn(params, batch, **kw), state
        loss, aux = _split_aux(out, self.has_aux, "loss_fn")
        return loss, new_state, aux

    def evaluate(self, params, state, batch):
        if self.eval_fn is not None:
            kw = random_kwargs(self.eval_random, None)
            if self.stateful:
                return self.eval_fn(params, state, batch, **kw)
            return self.eval_fn(params, batch, **kw)
        return self.loss(params, state, batch, None)[0]

    def seed(self, state, key):
        return state


class StructureKey:
    """:func:`structure_key` of a model, hashed once and interned.

    jit hashes and compares its static arguments at every call; a model's key is
    a deep tuple. Equal keys share one object (a weak intern table), so a
    second run with a freshly built model compares by identity.
    """

    __slots__ = ("__weakref__", "_hash", "key")
    _interned: ClassVar[weakref.WeakValueDictionary] = weakref.WeakValueDictionary()

    def __new__(cls, x: Any) -> StructureKey:
        key = structure_key(x)
        try:
            return cls._interned[key]
        except KeyError:
            self = super().__new__(cls)
            self.key, self._hash = key, hash(key)
            cls._interned[key] = self
            return self

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, StructureKey) and self.key == other.key)


def structure_key(x: Any, _depth: int = 0) -> Any:
    """A hashable value equal for equal structures, for keying compiled programs.

    Flax keeps a module's static attributes in its graph definition and compares
    them with ``==``: a ``functools.partial`` or a function made in ``__init__``
    (``self.pool = partial(nnx.avg_pool, window_shape=(2, 2))``, as Flax's own
    tutorial writes) is a new object in every freshly built model, so two
    models of one structure would never compare equal. Here partials compare by
    function and arguments, functions by code, closure and defaults, containers
    and dataclasses by their items; anything unhashable by identity.
    """
    if _depth > 50:  # a cycle through closures or attributes: identity decides
        return ("id", id(x))
    key = functools.partial(structure_key, _depth=_depth + 1)
    if isinstance(x, functools.partial):
        kw = tuple(sorted((k, key(v)) for k, v in x.keywords.items()))
        return ("partial", key(x.func), tuple(map(key, x.args)), kw)
    if isinstance(x, types.FunctionType):
        cells = tuple(key(c.cell_contents) for c in x.__closure__ or ())
        return ("function", x.__code__, cells, key(x.__defaults__))
    if isinstance(x, (list, tuple)):
        return (type(x), tuple(map(key, x)))
    if isinstance(x, dict):
        return (type(x), tuple((k, key(v)) for k, v in x.items()))
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        fields = dataclasses.fields(x)
        return (type(x), tuple((f.name, key(getattr(x, f.name))) for f in fields))
    try:
        hash(x)
    except TypeError:
        return ("id", id(x))
    return x


@dataclasses.dataclass(frozen=True)
class Nnx:
    """An ``nnx.Module`` with ``loss_fn(model, batch)``.

    ``graphdef`` is the module in the mode it was passed in (trained that way);
    ``eval_graphdef`` the same module after ``.eval()``. ``key_leaves`` marks
    the leaves of the non-parameter state that are RNG keys: each copy gets its
    own (``fold_in(copy_key, i)`` for the i-th), so Dropout differs between copies.
    Behaviours compare by :func:`structure_key` of the graph definitions: a
    freshly built model of the same structure reuses the compiled program.

    The engine carries the parameters and the state as flat lists of arrays
    (``params_def`` and ``state_def`` rebuild the ``nnx.State`` objects): a
    jitted call flattens and unflattens its arguments on the host, which for
    ``nnx.Variable`` nodes costs far more than for plain arrays.
    """

    loss_fn: Callable[..., Any]
    eval_fn: Callable[..., Any] | None
    has_aux: bool
    graphdef: Any = dataclasses.field(compare=False)
    eval_graphdef: Any = dataclasses.field(compare=False)
    params_def: Any = dataclasses.field(compare=False, default=None)
    state_def: Any = dataclasses.field(compare=False, default=None)
    key_leaves: tuple[bool, ...] = ()
    structure: Any = None  # StructureKey((graphdef, eval_graphdef, params_def, state_def))
    loss_random: tuple[str, ...] = ()
    eval_random: tuple[str, ...] = ()
    trained: Any = dataclasses.field(compare=False, default=None)  # the NNX filter trained

    def user_params(self, params: Any) -> Any:
        """The ``nnx.State`` of the parameters (any leading axes)."""
        return jax.tree.unflatten(self.params_def, params)

    def user_state(self, state: Any) -> Any:
        """The ``nnx.State`` of every other variable (any leading axes)."""
        return jax.tree.unflatten(self.state_def, state)

    def _merge(self, graphdef, params, state):
        from flax import nnx

        # Variables passed through a JAX transform must be re-created inside it.
        return nnx.merge(graphdef, self.user_params(params), self.user_state(state), copy=True)

    def loss(self, params, state, batch, key):
        from flax import nnx

        model = self._merge(self.graphdef, params, state)
        out = self.loss_fn(model, batch, **random_kwargs(self.loss_random, key))
        loss, aux = _split_aux(out, self.has_aux, "loss_fn")
        _, _, new_state = nnx.split(model, self.trained, ...)
        return loss, jax.tree.leaves(new_state), aux

    def evaluate(self, params, state, batch):
        model = self._merge(self.eval_graphdef, params, state)
        if self.eval_fn is not None:
            return self.eval_fn(model, batch, **random_kwargs(self.eval_random, None))
        out = self.loss_fn(model, batch, **random_kwargs(self.loss_random, None))
        return _split_aux(out, self.has_aux, "loss_fn")[0]

    def seed(self, state, key):
        leaves, treedef = jax.tree.flatten(state)
        out = []
        for i, (leaf, is_key) in enumerate(zip(leaves, self.key_leaves)):
            if is_key:
                new = jax.random.fold_in(key, i)
                if not jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                    new = jax.random.key_data(new)
                leaf = jnp.broadcast_to(new, leaf.shape)
            out.append(leaf)
        return jax.tree.unflatten(treedef, out)


class LinenApply:
    """The ``apply`` a Linen ``loss_fn(apply, batch)`` receives.

    ``apply(*args, **kwargs)`` is ``module.apply(variables, *args, **kwargs)`` with
    the trained parameters and the carried collections. ``apply.training`` is
    ``True`` while training (mutable collections such as ``batch_stats`` are
    updated and carried, a ``"dropout"`` RNG stream is given) and ``False`` in
    evaluation (nothing mutable, no RNG): pass it to the module, e.g.
    ``apply(x, train=apply.training)``.
    """

    def __init__(self, module, params, state, key, training):
        self.module = module
        self.variables = {"params": params, **state}
        self.state = state
        self.key = key
        self.training = training

    def __call__(self, *args, **kwargs):
        if not self.training:
            return self.module.apply(self.variables, *args, **kwargs)
        rngs = {"dropout": self.key} if self.key is not None else {}
        out, updates = self.module.apply(
            self.variables, *args, mutable=list(self.state), rngs=rngs, **kwargs
        )
        self.state = {**self.state, **updates}
        self.variables = {"params": self.variables["params"], **self.state}
        return out


@dataclasses.dataclass(frozen=True)
class Linen(_AsGiven):
    """A ``(linen_module, variables)`` pair with ``loss_fn(apply, batch)``.

    Compares by the functions (identity) and :func:`structure_key` of the module
    (its configuration), so a freshly built module of the same configuration
    reuses the compiled program.
    """

    loss_fn: Callable[..., Any]
    eval_fn: Callable[..., Any] | None
    has_aux: bool
    module: Any = dataclasses.field(compare=False)
    structure: Any = None  # StructureKey(module)
    loss_random: tuple[str, ...] = ()
    eval_random: tuple[str, ...] = ()

    def loss(self, params, state, batch, key):
        apply = LinenApply(self.module, params, state, key, training=True)
        out = self.loss_fn(apply, batch, **random_kwargs(self.loss_random, key))
        loss, aux = _split_aux(out, self.has_aux, "loss_fn")
        return loss, apply.state, aux

    def evaluate(self, params, state, batch):
        apply = LinenApply(self.module, params, state, None, training=False)
        if self.eval_fn is not None:
            return self.eval_fn(apply, batch, **random_kwargs(self.eval_random, None))
        out = self.loss_fn(apply, batch, **random_kwargs(self.loss_random, None))
        return _split_aux(out, self.has_aux, "loss_fn")[0]

    def seed(self, state, key):
        return state


@dataclasses.dataclass(frozen=True)
class Eqx:
    """An ``eqx.Module`` with ``loss_fn(model, batch)`` (or, with ``state=`` an
    ``eqx.nn.State``, ``loss_fn(model, state, batch) -> (loss, new_state)``).

    The trained parameters are the module's inexact (float) arrays, carried as a
    flat list (``params_def`` rebuilds the filtered module); everything else
    (activation functions, Dropout's rate and ``inference`` flag, integer
    arrays) is ``static`` and rebuilt into the module with ``eqx.combine`` inside
    every trace. Evaluation runs the model under ``eqx.nn.inference_mode``.
    Behaviours compare by ``structure`` (tree structures and a
    :func:`structure_key` of the static leaves), so a freshly built model of the
    same structure reuses the compiled program.
    """

    loss_fn: Callable[..., Any]
    eval_fn: Callable[..., Any] | None
    has_aux: bool
    stateful: bool
    static: Any = dataclasses.field(compare=False)
    params_def: Any = dataclasses.field(compare=False, default=None)
    structure: Any = None  # StructureKey of (params_def, static's structure and leaves)
    loss_random: tuple[str, ...] = ()
    eval_random: tuple[str, ...] = ()
    param_shapes: tuple = dataclasses.field(compare=False, default=())  # one copy's shapes

    def trainable(self, params: Any) -> Any:
        """The filtered module holding only the trained arrays (``None`` elsewhere)."""
        return jax.tree.unflatten(self.params_def, params)

    def user_params(self, params: Any) -> Any:
        """The user's module class with the given arrays (any leading axes: the
        arrays not trained are broadcast to them, so every array of a result has
        the copy axes and ``best_params()`` can pick one copy)."""
        import equinox as eqx

        leaves = jax.tree.leaves(params)
        lead = leaves[0].shape[: leaves[0].ndim - len(self.param_shapes[0])] if leaves else ()
        static = self.static
        if lead:
            grow = lambda a: np.broadcast_to(a, (*lead, *np.shape(a)))
            is_array = lambda a: isinstance(a, (np.ndarray, jax.Array))
            static = jax.tree.map(lambda a: grow(a) if is_array(a) else a, static)
        return eqx.combine(self.trainable(params), static)

    def user_state(self, state: Any) -> Any:
        """The ``eqx.nn.State`` as carried (``()`` without ``state=``)."""
        return state

    def _call(self, fn, model, state, batch, kw):
        if self.stateful:
            return fn(model, state, batch, **kw)
        return fn(model, batch, **kw)

    def loss(self, params, state, batch, key):
        kw = random_kwargs(self.loss_random, key)
        out = self._call(self.loss_fn, self.user_params(params), state, batch, kw)
        if self.stateful:
            out, state = out
        loss, aux = _split_aux(out, self.has_aux, "loss_fn")
        return loss, state, aux

    def evaluate(self, params, state, batch):
        import equinox as eqx

        model = eqx.nn.inference_mode(self.user_params(params))
        if self.eval_fn is not None:
            return self._call(
                self.eval_fn, model, state, batch, random_kwargs(self.eval_random, None)
            )
        out = self._call(self.loss_fn, model, state, batch, random_kwargs(self.loss_random, None))
        if self.stateful:
            out = out[0]
        return _split_aux(out, self.has_aux, "loss_fn")[0]

    def seed(self, state, key):
        return state


def _static_leaf_key(x: Any) -> Any:
    """A static leaf of an Equinox model for :class:`StructureKey`: arrays by content."""
    if isinstance(x, (np.ndarray, jax.Array)):
        a = np.asarray(x)
        return ("array", a.shape, str(a.dtype), hashlib.sha1(a.tobytes()).hexdigest())
    return structure_key(x)


def _is_nnx(x: Any) -> bool:
    nnx = sys.modules.get("flax.nnx")
    return nnx is not None and isinstance(x, nnx.Module)


def _is_linen_pair(x: Any) -> bool:
    linen = sys.modules.get("flax.linen")
    return (
        linen is not None
        and isinstance(x, tuple)
        and len(x) == 2
        and isinstance(x[0], linen.Module)
    )


def _is_eqx(x: Any) -> bool:
    eqx = sys.modules.get("equinox")
    return eqx is not None and isinstance(x, eqx.Module)


def is_flax(x: Any) -> bool:
    """Whether ``params`` is an NNX module or a Linen ``(module, variables)`` pair."""
    return _is_nnx(x) or _is_linen_pair(x)


def is_model_object(x: Any) -> bool:
    """Whether ``params`` is a model object (Flax NNX, Linen pair, Equinox module)
    rather than a pytree of arrays."""
    return is_flax(x) or _is_eqx(x)


def _make_eqx(loss_fn, params, state, eval_fn, has_aux, randomness, trainable) -> Model:
    import equinox as eqx

    stateful = state is not None
    if stateful and not isinstance(state, eqx.nn.State):
        raise TypeError(
            "state= with an Equinox model must be the eqx.nn.State from "
            f"eqx.nn.make_with_state, got {type(state).__name__}"
        )
    if trainable is None:
        trainable = eqx.is_inexact_array
    try:
        trained, static = eqx.partition(params, trainable)
    except (TypeError, ValueError) as e:
        raise TypeError(
            "trainable must be an Equinox filter: a callable leaf -> bool or a pytree of bools "
            f"shaped like the model ({str(e).splitlines()[0][:120]})"
        ) from None
    if not jax.tree.leaves(trained):
        raise ValueError("trainable selects no array of the model to train")
    p_leaves, p_def = jax.tree.flatten(trained)
    s_leaves, s_def = jax.tree.flatten(static)
    structure = StructureKey((p_def, s_def, tuple(map(_static_leaf_key, s_leaves))))
    behaviour = Eqx(loss_fn, eval_fn, has_aux, stateful, static, p_def, structure, *randomness,
                    param_shapes=tuple(np.shape(x) for x in p_leaves))  # fmt: skip
    return Model(p_leaves, state if stateful else (), behaviour)


def make_model(
    loss_fn: Callable[..., Any],
    params: Any,
    *,
    state: Any = None,
    eval_fn: Callable[..., Any] | None = None,
    has_aux: bool = False,
    trainable: Any = None,
) -> Model:
    """Builds the engine's :class:`Model` from what the user passed.

    ``trainable`` picks the arrays to train (the others are carried unchanged):
    an NNX filter (default ``nnx.Param``) for an ``nnx.Module``, an Equinox
    filter (default ``eqx.is_inexact_array``) for an ``eqx.Module``.

    Raises:
      TypeError: ``state`` given with a Flax model (Flax models carry their own),
        or ``rngs`` asked for by a ``loss_fn``/``eval_fn`` of a model that is not
        an NNX module.
      ValueError: a Linen pair without a ``params`` collection.
    """
    randomness = (random_args(loss_fn), random_args(eval_fn))
    if not _is_nnx(params):
        for who, names in zip(("loss_fn", "eval_fn"), randomness):
            if "rngs" in names:
                raise TypeError(
                    f"{who} takes rngs, an nnx.Rngs that lrjax passes to Flax NNX models only; "
                    "name the parameter key to receive a PRNG key per copy and step"
                )
    if _is_eqx(params):
        return _make_eqx(loss_fn, params, state, eval_fn, has_aux, randomness, trainable)
    if _is_nnx(params):
        if state is not None:
            raise TypeError("state is for plain-JAX models; an nnx.Module carries its own state")
        from flax import nnx

        selected = nnx.Param if trainable is None else trainable
        try:
            graphdef, trained, rest = nnx.split(params, selected, ...)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"trainable must be an NNX filter (a Variable type, nnx.PathContains, ...), "
                f"got {trainable!r} ({str(e).splitlines()[0][:120]})"
            ) from None
        if not jax.tree.leaves(trained):
            raise ValueError(f"trainable={trainable!r} selects no variable of the model to train")
        shadow = nnx.merge(graphdef, trained, rest, copy=True)  # never touch the user's module
        shadow.eval()
        eval_graphdef, _, _ = nnx.split(shadow, selected, ...)
        key_leaves = []
        for var in jax.tree.leaves(rest, is_leaf=lambda x: isinstance(x, nnx.Variable)):
            key_leaves += [isinstance(var, nnx.RngKey)] * len(jax.tree.leaves(var))
        p_leaves, p_def = jax.tree.flatten(trained)
        s_leaves, s_def = jax.tree.flatten(rest)
        structure = StructureKey((graphdef, eval_graphdef, p_def, s_def, selected))
        behaviour = Nnx(loss_fn, eval_fn, has_aux, graphdef, eval_graphdef, p_def, s_def,
                        tuple(key_leaves), structure, *randomness, selected)  # fmt: skip
        return Model(p_leaves, s_leaves, behaviour)
    if trainable is not None:
        raise TypeError(
            "trainable= picks the arrays of an nnx.Module or an eqx.Module to train; for a plain "
            "pytree (or a Linen model) pass only the parameters to train and close over the rest"
        )
    if _is_linen_pair(params):
        if state is not None:
            raise TypeError(
                "state is for plain-JAX models; Linen variables carry their own collections"
            )
        module, variables = params
        if not hasattr(variables, "keys") or "params" not in variables:
            raise ValueError(
                "params=(module, variables): variables must be a dict with a 'params' "
                "collection (module.init(...))"
            )
        rest = {k: v for k, v in variables.items() if k != "params"}
        behaviour = Linen(loss_fn, eval_fn, has_aux, module, StructureKey(module), *randomness)
        return Model(variables["params"], rest, behaviour)
    stateful = state is not None
    behaviour = Plain(loss_fn, eval_fn, has_aux, stateful, *randomness)
    return Model(params, state if stateful else (), behaviour)
