"""Per-parameter-group rates: multipliers chosen by regex on the parameter path."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax._checks import check_number

Multiplier = float | jax.Array | Callable[[jax.Array], jax.Array]


class ScaleByLayerState(NamedTuple):
    """State of :func:`scale_by_layer`.

    Attributes:
      count: updates applied so far (int32); schedule multipliers are evaluated
        at it, so the first update sees step 0.
    """

    count: jax.Array


def _key_name(k: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def path_name(keypath: Sequence[Any]) -> str:
    """The ``/``-joined name of a pytree key path.

    Dict keys, attribute names and sequence indices are joined with ``/``; the
    trailing ``.value`` of a Flax NNX ``Variable`` is dropped, so an NNX state
    reads ``"layers/0/kernel"`` like the nested dict it mirrors.
    """
    keys = list(keypath)
    if keys and isinstance(keys[-1], jax.tree_util.GetAttrKey) and keys[-1].name == "value":
        keys = keys[:-1]
    return "/".join(_key_name(k) for k in keys)


def parameter_paths(params: Any) -> list[str]:
    """Every leaf's ``/``-joined path, in tree order (what :func:`scale_by_layer` matches).

    Example:
      >>> import jax.numpy as jnp
      >>> parameter_paths({"encoder": [{"w": jnp.ones(2)}], "head": {"w": jnp.ones(2)}})
      ['encoder/0/w', 'head/w']
    """
    return [path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def _parse(multipliers: Any, default: Any) -> list[tuple[str, re.Pattern[str], Multiplier]]:
    if isinstance(multipliers, Mapping):
        items = list(multipliers.items())
    elif isinstance(multipliers, Sequence) and not isinstance(multipliers, str):
        items = list(multipliers)
        for item in items:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise TypeError(
                    "multipliers must be a mapping {pattern: multiplier} or a sequence of "
                    f"(pattern, multiplier) pairs, got the item {item!r}"
                )
    else:
        raise TypeError(
            "multipliers must be a mapping {pattern: multiplier} or a sequence of "
            f"(pattern, multiplier) pairs, got {type(multipliers).__name__}"
        )
    rules = []
    for pattern, mult in items:
        if not isinstance(pattern, str):
            raise TypeError(f"multipliers: a pattern must be a string, got {pattern!r}")
        try:
            compiled = re.compile(pattern)
        except re.error as e:
            raise ValueError(f"multipliers: invalid regex {pattern!r}: {e}") from None
        if not callable(mult):
            check_number(f"multipliers[{pattern!r}]", mult, lambda x: x >= 0, ">= 0")
        rules.append((pattern, compiled, mult))
    if not callable(default):
        check_number("default", default, lambda x: x >= 0, ">= 0")
    return rules


def scale_by_layer(
    multipliers: Mapping[str, Multiplier] | Sequence[tuple[str, Multiplier]],
    default: Multiplier = 1.0,
) -> optax.GradientTransformation:
    """Multiplies each parameter's update by the multiplier of its group.

    A parameter's group is chosen by regular expression on its ``/``-joined
    path (``"params/Dense_0/kernel"`` for Flax Linen, ``"layers/0/kernel"`` for
    an NNX state, ``"body/1/w"`` for nested dicts and lists; see
    :func:`parameter_paths`). Patterns are tried in order with ``re.search``
    and the first that matches wins (anchor with ``^``/``$`` for exact
    matches); parameters no pattern matches get ``default``. A multiplier is a
    number or a schedule (a callable of the update count, starting at 0), so a
    group can warm up or thaw on its own timetable.

    Chain it after an optimizer: ``optax.chain(optax.adam(lr),
    scale_by_layer({...}))`` gives each group the rate ``lr * multiplier``
    (fastai's discriminative rates). Numeric multipliers may be JAX arrays or
    tracers, so they can be vmapped over.

    Args:
      multipliers: ``{pattern: multiplier}`` (insertion order is the matching
        order) or a sequence of ``(pattern, multiplier)`` pairs.
      default: the multiplier of parameters no pattern matches.

    Returns:
      An ``optax.GradientTransformation`` whose state is a
      :class:`ScaleByLayerState`.

    Raises:
      ValueError: at ``init``, a pattern that matches no parameter (the message
        lists the available paths); at construction, an invalid regex or a
        negative or non-finite multiplier.

    Example:
      >>> import jax.numpy as jnp, optax, lrjax
      >>> params = {"body": {"w": jnp.ones(2)}, "head": {"w": jnp.ones(2)}}
      >>> tx = optax.chain(optax.sgd(1.0), lrjax.scale_by_layer({"^body/": 0.1}))
      >>> updates, _ = tx.update(params, tx.init(params), params)
      >>> updates["body"]["w"].tolist(), updates["head"]["w"].tolist()
      ([-0.10000000149011612, -0.10000000149011612], [-1.0, -1.0])
    """
    rules = _parse(multipliers, default)

    def lookup(path: str) -> Multiplier:
        for _, compiled, mult in rules:
            if compiled.search(path):
                return mult
        return default

    def init_fn(params: Any) -> ScaleByLayerState:
        paths = parameter_paths(params)
        unmatched = [p for p, c, _ in rules if not any(c.search(x) for x in paths)]
        if unmatched:
            raise ValueError(
                f"scale_by_layer: pattern(s) {unmatched} match no parameter; "
                f"the parameter paths are {paths}"
            )
        return ScaleByLayerState(count=jnp.zeros((), jnp.int32))

    def update_fn(updates, state, params=None):
        del params

        def scale(keypath, u):
            mult = lookup(path_name(keypath))
            m = mult(state.count) if callable(mult) else mult
            return u * jnp.asarray(m).astype(u.dtype)

        updates = jax.tree_util.tree_map_with_path(scale, updates)
        return updates, ScaleByLayerState(count=optax.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)


def layer_multipliers(n_groups: int, lo: float, hi: float) -> tuple[float, ...] | jax.Array:
    """fastai's geometric spread of rates over ``n_groups`` layer groups.

    The same numbers as fastai's ``even_mults(lo, hi, n_groups)`` (what
    ``lr_max=slice(lo, hi)`` gives the groups): ``lo * r**i`` for ``i = 0 ..
    n_groups - 1`` with ``r = (hi / lo) ** (1 / (n_groups - 1))``, so the first
    group gets ``lo`` and the last ``hi``; one group gets ``hi``. Pair them
    with patterns, first layers first, for :func:`scale_by_layer`.

    Args:
      n_groups: the number of groups, an int ``>= 1`` (static).
      lo: the first (lowest) multiplier, ``> 0``.
      hi: the last multiplier, ``> 0``.

    Returns:
      A tuple of ``n_groups`` floats, or a JAX array of shape ``[n_groups]``
      when ``lo`` or ``hi`` is an array or a tracer.

    Raises:
      ValueError: ``n_groups < 1`` or a non-positive ``lo``/``hi``.

    Example:
      >>> [round(m, 6) for m in layer_multipliers(3, 0.01, 1.0)]
      [0.01, 0.1, 1.0]
    """
    if isinstance(n_groups, bool) or not isinstance(n_groups, (int, np.integer)):
        raise TypeError(f"n_groups must be an int, got {n_groups!r}")
    if n_groups < 1:
        raise ValueError(f"n_groups must be >= 1, got {n_groups!r}")
    check_number("lo", lo, lambda x: x > 0, "> 0")
    check_number("hi", hi, lambda x: x > 0, "> 0")
    n = int(n_groups)
    if isinstance(lo, (int, float, np.number)) and isinstance(hi, (int, float, np.number)):
        if n == 1:
            return (float(hi),)
        r = (float(hi) / float(lo)) ** (1.0 / (n - 1))
        return tuple(float(lo) * r**i for i in range(n))
    lo_a, hi_a = jnp.asarray(lo), jnp.asarray(hi)
    if n == 1:
        return jnp.reshape(hi_a, (1,)).astype(float)
    r = (hi_a / lo_a) ** (1.0 / (n - 1))
    return lo_a * r ** jnp.arange(n)
