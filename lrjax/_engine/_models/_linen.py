"""Flax Linen: a ``(module, variables)`` pair with ``loss_fn(apply, batch)``."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any, ClassVar

from lrjax._engine._models._common import (
    AsGiven,
    Framework,
    Model,
    StructureKey,
    random_kwargs,
    split_aux,
)


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
class Linen(AsGiven):
    """A ``(linen_module, variables)`` pair with ``loss_fn(apply, batch)``.

    Compares by the functions (their structure) and :class:`StructureKey` of the module
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

    stateful: ClassVar[bool] = False
    first_arg: ClassVar[str] = "apply"

    def loss(self, params, state, batch, key):
        apply = LinenApply(self.module, params, state, key, training=True)
        out = self.loss_fn(apply, batch, **random_kwargs(self.loss_random, key))
        loss, aux = split_aux(out, self.has_aux, "loss_fn")
        return loss, apply.state, aux

    def evaluate(self, params, state, batch):
        apply = LinenApply(self.module, params, state, None, training=False)
        if self.eval_fn is not None:
            return self.eval_fn(apply, batch, **random_kwargs(self.eval_random, None))
        out = self.loss_fn(apply, batch, **random_kwargs(self.loss_random, None))
        return split_aux(out, self.has_aux, "loss_fn")[0]


def matches(x: Any) -> bool:
    """A ``(linen.Module, variables)`` pair (Flax never imported here)."""
    linen = sys.modules.get("flax.linen")
    return (
        linen is not None
        and isinstance(x, tuple)
        and len(x) == 2
        and isinstance(x[0], linen.Module)
    )


def make(loss_fn, params, *, state, eval_fn, has_aux, randomness, trainable) -> Model:
    """``variables["params"]`` trained, the other collections carried."""
    if trainable is not None:
        raise TypeError(
            "trainable= picks the arrays of an nnx.Module or an eqx.Module to train; for a plain "
            "pytree (or a Linen model) pass only the parameters to train and close over the rest"
        )
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


FRAMEWORK = Framework("Flax Linen", matches, make)
