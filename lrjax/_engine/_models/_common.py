"""What every framework's behaviour shares: randomness by parameter name, aux
outputs, and the structure key that compiled programs are keyed on."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, Protocol

import jax


class Behaviour(Protocol):
    """What the engine needs of a model: pure functions of arrays, hashable.

    One class per framework implements it (``_plain``, ``_nnx``, ``_linen``,
    ``_eqx``). Behaviours compare by value (the user's functions and a model's
    structure by :class:`StructureKey`, the functions wrapped in
    ``_static.Static``): a second call with functions of the same code and
    closure and an equally structured model reuses the compiled program.

    Attributes:
      loss_fn: the user's loss function.
      eval_fn: the user's evaluation function, or ``None`` (the loss).
      has_aux: ``loss_fn`` returns ``(loss, aux)``.
      stateful: ``loss_fn`` takes and returns a state (``state=``).
      first_arg: what ``loss_fn`` receives first, for messages: ``"params"``,
        ``"model"`` or ``"apply"``.
    """

    loss_fn: Callable[..., Any]
    eval_fn: Callable[..., Any] | None
    has_aux: bool
    stateful: bool
    first_arg: ClassVar[str]

    def loss(self, params: Any, state: Any, batch: Any, key: Any) -> tuple[Any, Any, Any]:
        """``(loss, new_state, aux)`` of one training step; ``key`` is the copy's
        typed PRNG key for the step (``None`` at evaluation)."""

    def evaluate(self, params: Any, state: Any, batch: Any) -> jax.Array:
        """The evaluation score on one batch (eval mode: no Dropout, ...)."""

    def seed(self, state: Any, key: Any) -> Any:
        """``state`` with the copy's own random streams drawn from ``key``."""

    def user_params(self, params: Any) -> Any:
        """The parameters as the user knows them (any leading copy axes)."""

    def user_state(self, state: Any) -> Any:
        """The model state as the user knows it (any leading copy axes)."""

    def trained(self, params: Any) -> Any:
        """The trained arrays, in a form whose leaves can be checked."""

    def optimizer_params(self, params: Any) -> Any:
        """The trained arrays as the optimizer sees them: the tree (and paths) a
        training loop written with this framework hands ``tx.init`` and
        ``tx.update``, so transforms that read paths or shapes
        (``scale_by_layer``, ``scale_by_mup``, ``optax.masked``) work."""

    def from_optimizer(self, tree: Any) -> Any:
        """The inverse of :meth:`optimizer_params` (the optimizer's updates back)."""


class Model(NamedTuple):
    """A model in the engine's form: trained ``params``, carried ``state``
    (BatchNorm statistics, RNG counters, any non-parameter variable; ``()``
    when there is none) and its :class:`Behaviour`."""

    params: Any
    state: Any
    behaviour: Behaviour


class Framework(NamedTuple):
    """One framework's way in: a model object it claims, and how to build the
    engine's :class:`Model` from it (a module per framework; registered in
    :data:`lrjax._engine._models.FRAMEWORKS`).

    Attributes:
      name: the framework, for messages.
      matches: ``params -> bool``: the user's model is one of this framework's.
      make: ``(loss_fn, params, *, state, eval_fn, has_aux, randomness,
        trainable) -> Model``; raises the framework's own argument errors.
      is_object: its models are objects (not a pytree of arrays to train).
      rngs: ``loss_fn`` may ask for an ``nnx.Rngs`` by naming a parameter ``rngs``.
    """

    name: str
    matches: Callable[[Any], bool]
    make: Callable[..., Model]
    is_object: bool = True
    rngs: bool = False


#: The parameter names through which ``loss_fn`` / ``eval_fn`` ask for randomness.
RANDOM_ARGS = ("key", "rngs")


def split_aux(out: Any, has_aux: bool, who: str) -> tuple[Any, Any]:
    """``(loss, aux)`` from what ``who`` returned (``aux`` is ``()`` without ``has_aux``)."""
    if not has_aux:
        return out, ()
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError(
            f"{who} with has_aux=True must return (loss, aux), got {type(out).__name__}"
        )
    return out


def random_args(fn: Callable[..., Any] | None) -> tuple[str, ...]:
    """The names of :data:`RANDOM_ARGS` that ``fn`` declares (read once, by signature)."""
    if fn is None:
        return ()
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


class AsGiven:
    """Parameters and state are carried in the form the user gave them."""

    def user_params(self, params: Any) -> Any:
        return params

    def user_state(self, state: Any) -> Any:
        return state

    def trained(self, params: Any) -> Any:
        return params

    def optimizer_params(self, params: Any) -> Any:
        return params

    def from_optimizer(self, tree: Any) -> Any:
        return tree

    def seed(self, state: Any, key: Any) -> Any:
        return state


class StructureKey:
    """:func:`structure_key` of a model or a function, hashed once and interned.

    jit hashes and compares its static arguments at every call; a model's key is
    a deep tuple. Equal keys share one object (a weak intern table), so a
    second run with a freshly built model compares by identity. ``strict``: see
    :func:`structure_key`.
    """

    __slots__ = ("__weakref__", "_hash", "key")
    _interned: ClassVar[weakref.WeakValueDictionary] = weakref.WeakValueDictionary()

    def __new__(cls, x: Any, strict: bool = False) -> StructureKey:
        key = (strict, structure_key(x, strict))
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


class Identity:
    """An object as a key part compared by identity. It holds the object, so
    its ``id`` cannot be reused by another while a compiled program is keyed on
    it (a bare ``id`` could: an object freed and another allocated at its
    address would reuse the first one's program)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any):
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other.obj is self.obj


def structure_key(x: Any, strict: bool = False, _depth: int = 0) -> Any:
    """A hashable value equal for equal structures, for keying compiled programs.

    Flax keeps a module's static attributes in its graph definition and compares
    them with ``==``: a ``functools.partial`` or a function made in ``__init__``
    (``self.pool = partial(nnx.avg_pool, window_shape=(2, 2))``, as Flax's own
    tutorial writes) is a new object in every freshly built model, so two
    models of one structure would never compare equal. Here partials compare by
    function and arguments, functions by code, globals, closure and defaults,
    containers and dataclasses by their items; anything unhashable by identity.

    ``strict`` (the user's loss, evaluation and optimizer functions): only what
    cannot change compares by value (numbers, strings, tuples, frozen
    dataclasses, functions and partials); a list, dict or other mutable object
    in a closure compares by identity, as ``jax.jit`` compares the function
    itself (a loss appending to a list it closes over must not run another
    list's program).
    """
    if _depth > 50:  # a cycle through closures or attributes: identity decides
        return Identity(x)
    key = functools.partial(structure_key, strict=strict, _depth=_depth + 1)
    if isinstance(x, functools.partial):
        kw = tuple(sorted((k, key(v)) for k, v in x.keywords.items()))
        return ("partial", key(x.func), tuple(map(key, x.args)), kw)
    if isinstance(x, types.FunctionType):
        cells = tuple(_cell_key(c, key) for c in x.__closure__ or ())
        defaults = (key(x.__defaults__), key(x.__kwdefaults__))
        return ("function", x.__code__, Identity(x.__globals__), cells, defaults)
    if isinstance(x, types.MethodType):  # a new object at every attribute access
        owner = x.__self__
        return ("method", key(x.__func__), owner if _hashable(owner) else Identity(owner))
    if isinstance(x, tuple) or (isinstance(x, list) and not strict):
        return (type(x), tuple(map(key, x)))
    if isinstance(x, dict) and not strict:
        return (type(x), tuple((k, key(v)) for k, v in x.items()))
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        if not strict or x.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            fields = dataclasses.fields(x)
            return (type(x), tuple((f.name, key(getattr(x, f.name))) for f in fields))
        return Identity(x)
    return x if _hashable(x) else Identity(x)


def _cell_key(cell: Any, key: Callable[[Any], Any]) -> Any:
    try:
        return key(cell.cell_contents)
    except ValueError:  # an empty cell (a name the enclosing function binds later)
        return Identity(cell)


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True
