"""Flax NNX: an ``nnx.Module`` with ``loss_fn(model, batch)``."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from lrjax._engine._models._common import (
    Framework,
    Model,
    StructureKey,
    random_kwargs,
    split_aux,
)


@dataclasses.dataclass(frozen=True)
class Nnx:
    """An ``nnx.Module`` with ``loss_fn(model, batch)``.

    ``graphdef`` is the module in the mode it was passed in (trained that way);
    ``eval_graphdef`` the same module after ``.eval()``. ``key_leaves`` marks
    the leaves of the non-parameter state that are RNG keys: each copy gets its
    own (``fold_in(copy_key, i)`` for the i-th), so Dropout differs between copies.
    Behaviours compare by :class:`StructureKey` of the graph definitions: a
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
    selected: Any = dataclasses.field(compare=False, default=None)  # the NNX filter trained
    # the trained state as a plain nested dict (the optimizer's view), and where
    # each of its leaves sits in the carried list
    pure_def: Any = dataclasses.field(compare=False, default=None)
    pure_order: tuple[int, ...] = dataclasses.field(compare=False, default=())

    stateful: ClassVar[bool] = False
    first_arg: ClassVar[str] = "model"

    def user_params(self, params: Any) -> Any:
        """The ``nnx.State`` of the parameters (any leading axes)."""
        return jax.tree.unflatten(self.params_def, params)

    def user_state(self, state: Any) -> Any:
        """The ``nnx.State`` of every other variable (any leading axes)."""
        return jax.tree.unflatten(self.state_def, state)

    def trained(self, params: Any) -> Any:
        return self.user_params(params)

    def optimizer_params(self, params: Any) -> Any:
        """The trained state as a plain nested dict of arrays (``nnx.State``'s
        paths, without ``nnx.Variable`` nodes): as ``nnx.Optimizer`` hands it."""
        return jax.tree.unflatten(self.pure_def, [params[i] for i in self.pure_order])

    def from_optimizer(self, tree: Any) -> Any:
        out = [None] * len(self.pure_order)
        for i, leaf in zip(self.pure_order, jax.tree.leaves(tree)):
            out[i] = leaf
        return out

    def _merge(self, graphdef, params, state):
        from flax import nnx

        # Variables passed through a JAX transform must be re-created inside it.
        return nnx.merge(graphdef, self.user_params(params), self.user_state(state), copy=True)

    def loss(self, params, state, batch, key):
        from flax import nnx

        model = self._merge(self.graphdef, params, state)
        out = self.loss_fn(model, batch, **random_kwargs(self.loss_random, key))
        loss, aux = split_aux(out, self.has_aux, "loss_fn")
        _, _, new_state = nnx.split(model, self.selected, ...)
        return loss, jax.tree.leaves(new_state), aux

    def evaluate(self, params, state, batch):
        model = self._merge(self.eval_graphdef, params, state)
        if self.eval_fn is not None:
            return self.eval_fn(model, batch, **random_kwargs(self.eval_random, None))
        out = self.loss_fn(model, batch, **random_kwargs(self.loss_random, None))
        return split_aux(out, self.has_aux, "loss_fn")[0]

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


def matches(x: Any) -> bool:
    """An ``nnx.Module`` (Flax imported by the user already: never imported here)."""
    nnx = sys.modules.get("flax.nnx")
    return nnx is not None and isinstance(x, nnx.Module)


def make(loss_fn, params, *, state, eval_fn, has_aux, randomness, trainable) -> Model:
    """The module split into trained variables (``trainable``, default ``nnx.Param``)
    and every other variable, carried; the user's module is never touched."""
    from flax import nnx

    if state is not None:
        raise TypeError("state is for plain-JAX models; an nnx.Module carries its own state")
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
    # each carried leaf's index, read back in the plain dict's order
    indexed = nnx.to_pure_dict(jax.tree.unflatten(p_def, list(range(len(p_leaves)))))
    behaviour = Nnx(loss_fn, eval_fn, has_aux, graphdef, eval_graphdef, p_def, s_def,
                    tuple(key_leaves), structure, *randomness, selected,
                    jax.tree.structure(indexed), tuple(jax.tree.leaves(indexed)))  # fmt: skip
    return Model(p_leaves, s_leaves, behaviour)


FRAMEWORK = Framework("Flax NNX", matches, make, rngs=True)
