"""What the engine trains: one functional form for every framework.

The engine sees a :class:`Model`: trained ``params``, carried ``state`` and a
:class:`Behaviour`, a hashable object whose methods are pure functions of
arrays (``loss``, ``evaluate``, ``seed``, and the user's view of the
parameters and state). One module per framework builds it (:data:`FRAMEWORKS`:
Equinox, Flax NNX, Flax Linen; anything else is a plain pytree); adding a
framework is one module with a :class:`Framework` and one line here.

Randomness by parameter name: a ``loss_fn`` or ``eval_fn`` that declares a
parameter ``key`` receives the copy's PRNG key for the step, one that declares
``rngs`` an ``nnx.Rngs`` made from it (frameworks with ``Framework.rngs``);
both are ``None`` at evaluation. The user's model object is never mutated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from lrjax._engine._models import _eqx, _linen, _nnx, _plain
from lrjax._engine._models._common import (
    RANDOM_ARGS,
    Behaviour,
    Framework,
    Model,
    StructureKey,
    random_args,
    random_kwargs,
    structure_key,
)
from lrjax._engine._static import Static

#: The frameworks, tried in order; the last claims everything (plain pytrees).
FRAMEWORKS: tuple[Framework, ...] = (
    _eqx.FRAMEWORK,
    _nnx.FRAMEWORK,
    _linen.FRAMEWORK,
    _plain.FRAMEWORK,
)


def framework_of(params: Any) -> Framework:
    """The :class:`Framework` whose models ``params`` is."""
    return next(f for f in FRAMEWORKS if f.matches(params))


def is_model_object(x: Any) -> bool:
    """Whether ``x`` is a model object (Flax NNX, Linen pair, Equinox module)
    rather than a pytree of arrays."""
    return framework_of(x).is_object


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
      TypeError: ``rngs`` asked for by a ``loss_fn``/``eval_fn`` of a model
        whose framework has no ``nnx.Rngs``, or a framework's own argument
        errors (``state`` with a Flax model, ``trainable`` with a plain pytree).
      ValueError: e.g. a Linen pair without a ``params`` collection.
    """
    framework = framework_of(params)
    randomness = (random_args(loss_fn), random_args(eval_fn))
    if not framework.rngs:
        for who, names in zip(("loss_fn", "eval_fn"), randomness):
            if "rngs" in names:
                raise TypeError(
                    f"{who} takes rngs, an nnx.Rngs that lrjax passes to Flax NNX models only; "
                    "name the parameter key to receive a PRNG key per copy and step"
                )
    # keyed by structure: a loss written anew for each call reuses the compiled program
    loss_fn = Static(loss_fn)
    eval_fn = None if eval_fn is None else Static(eval_fn)
    return framework.make(
        loss_fn, params, state=state, eval_fn=eval_fn, has_aux=has_aux, randomness=randomness,
        trainable=trainable,
    )  # fmt: skip


def stack_models(models: Sequence[Model], what: str = "init_fn(key)") -> Model:
    """One :class:`Model` whose ``params`` and ``state`` have a leading seed axis,
    from models built one per seed (each seed's initialisation).

    Raises:
      ValueError: the models differ in more than their arrays' values (another
        structure, other static parts), naming ``what`` built them.
    """
    first = models[0].behaviour
    for i, m in enumerate(models[1:], 1):
        shapes = lambda t: jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), t)
        same = m.behaviour == first and jax.tree.structure(m.params) == jax.tree.structure(
            models[0].params
        )
        if not same or shapes((m.params, m.state)) != shapes((models[0].params, models[0].state)):
            raise ValueError(
                f"{what} built models of different structures for seeds 0 and {i}; each seed "
                "must give the same model with other initial values (only trained arrays and "
                "state may differ)"
            )
    stack = lambda *xs: jnp.stack(xs)
    params = jax.tree.map(stack, *(m.params for m in models))
    state = jax.tree.map(stack, *(m.state for m in models))
    return Model(params, state, first)


__all__ = [
    "FRAMEWORKS",
    "RANDOM_ARGS",
    "Behaviour",
    "Framework",
    "Model",
    "StructureKey",
    "framework_of",
    "is_model_object",
    "make_model",
    "random_args",
    "random_kwargs",
    "stack_models",
    "structure_key",
]
