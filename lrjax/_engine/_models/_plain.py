"""Plain JAX: a pytree of arrays with ``loss_fn(params, batch)``, or with ``state=``
``loss_fn(params, state, batch) -> (loss, new_state)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from lrjax._engine._models._common import AsGiven, Framework, Model, random_kwargs, split_aux


@dataclasses.dataclass(frozen=True)
class Plain(AsGiven):
    """``loss_fn(params, batch)`` (or ``(params, state, batch) -> (loss, state)``)."""

    loss_fn: Callable[..., Any]
    eval_fn: Callable[..., Any] | None
    has_aux: bool
    stateful: bool
    loss_random: tuple[str, ...] = ()
    eval_random: tuple[str, ...] = ()

    first_arg: ClassVar[str] = "params"

    def loss(self, params, state, batch, key):
        kw = random_kwargs(self.loss_random, key)
        if self.stateful:
            out, new_state = self.loss_fn(params, state, batch, **kw)
        else:
            out, new_state = self.loss_fn(params, batch, **kw), state
        loss, aux = split_aux(out, self.has_aux, "loss_fn")
        return loss, new_state, aux

    def evaluate(self, params, state, batch):
        if self.eval_fn is not None:
            kw = random_kwargs(self.eval_random, None)
            if self.stateful:
                return self.eval_fn(params, state, batch, **kw)
            return self.eval_fn(params, batch, **kw)
        return self.loss(params, state, batch, None)[0]


def make(loss_fn, params, *, state, eval_fn, has_aux, randomness, trainable) -> Model:
    """The :class:`Plain` model; ``trainable=`` is for model objects only."""
    if trainable is not None:
        raise TypeError(
            "trainable= picks the arrays of an nnx.Module or an eqx.Module to train; for a plain "
            "pytree (or a Linen model) pass only the parameters to train and close over the rest"
        )
    stateful = state is not None
    behaviour = Plain(loss_fn, eval_fn, has_aux, stateful, *randomness)
    return Model(params, state if stateful else (), behaviour)


#: Anything no other framework claims is a plain pytree of arrays.
FRAMEWORK = Framework("plain JAX", lambda x: True, make, is_object=False)
