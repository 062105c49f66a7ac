"""Equinox: an ``eqx.Module`` with ``loss_fn(model, batch)`` (or, with ``state=``
an ``eqx.nn.State``, ``loss_fn(model, state, batch) -> (loss, new_state)``)."""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import numpy as np

from lrjax._engine._models._common import (
    Framework,
    Model,
    StructureKey,
    random_kwargs,
    split_aux,
    structure_key,
)


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

    first_arg: ClassVar[str] = "model"

    def trained(self, params: Any) -> Any:
        """The filtered module holding only the trained arrays (``None`` elsewhere)."""
        return jax.tree.unflatten(self.params_def, params)

    def optimizer_params(self, params: Any) -> Any:
        """The filtered module (``eqx.filter(model, trainable)``, as Equinox's own
        loops hand the optimizer)."""
        return self.trained(params)

    def from_optimizer(self, tree: Any) -> Any:
        return jax.tree.leaves(tree)

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
        return eqx.combine(self.trained(params), static)

    def user_state(self, state: Any) -> Any:
        """The ``eqx.nn.State`` as carried (``()`` without ``state=``)."""
        return state

    def seed(self, state: Any, key: Any) -> Any:
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
        loss, aux = split_aux(out, self.has_aux, "loss_fn")
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
        return split_aux(out, self.has_aux, "loss_fn")[0]


def _static_leaf_key(x: Any) -> Any:
    """A static leaf of an Equinox model for :class:`StructureKey`: arrays by content."""
    if isinstance(x, (np.ndarray, jax.Array)):
        a = np.asarray(x)
        return ("array", a.shape, str(a.dtype), hashlib.sha1(a.tobytes()).hexdigest())
    return structure_key(x)


def matches(x: Any) -> bool:
    """An ``eqx.Module`` (Equinox never imported here)."""
    eqx = sys.modules.get("equinox")
    return eqx is not None and isinstance(x, eqx.Module)


def make(loss_fn, params, *, state, eval_fn, has_aux, randomness, trainable) -> Model:
    """The module partitioned by ``trainable`` (default ``eqx.is_inexact_array``):
    the selected arrays trained, the rest static."""
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


FRAMEWORK = Framework("Equinox", matches, make)
