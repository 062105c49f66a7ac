"""Adapters from Flax models to the ``loss_fn(params, batch)`` form.

With Flax, the loss takes the model rather than a parameter tree:

- NNX: ``loss_fn(model, batch)``; :func:`from_nnx` splits the module into its
  ``nnx.Param`` state (trained) and the rest (held fixed).
- Linen: ``loss_fn(apply, batch)`` where ``apply(*args, **kwargs)`` is
  ``module.apply({"params": params, **other_collections}, *args, **kwargs)``;
  :func:`from_linen` trains ``variables["params"]`` and holds the other
  collections (e.g. ``batch_stats``) fixed, so use BatchNorm in inference mode.

:func:`lrjax.range_test` and :func:`lrjax.sweep` apply these automatically when
``params`` is an ``nnx.Module`` or a ``(linen_module, variables)`` pair. Flax
is imported only when such an object is passed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

LossFn = Callable[[Any, Any], Any]


def from_nnx(loss_fn: Callable[[Any, Any], Any], model: Any) -> tuple[LossFn, Any]:
    """``(loss(params, batch), params)`` for an NNX module and ``loss_fn(model, batch)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
      >>> loss, params = from_nnx(lambda m, b: jnp.mean((m(b[0]) - b[1]) ** 2), model)
      >>> float(loss(params, (jnp.ones((4, 3)), jnp.zeros((4, 1))))) >= 0
      True
    """
    from flax import nnx

    if not isinstance(model, nnx.Module):
        raise TypeError(f"model must be a flax.nnx.Module, got {type(model).__name__}")
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(p: Any, batch: Any) -> Any:
        return loss_fn(nnx.merge(graphdef, p, rest), batch)

    return loss, params


def from_linen(
    loss_fn: Callable[[Any, Any], Any], module: Any, variables: Any
) -> tuple[LossFn, Any]:
    """``(loss(params, batch), params)`` for a Linen module, its variables and
    ``loss_fn(apply, batch)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import flax.linen as nn
      >>> module = nn.Dense(1)
      >>> variables = module.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))
      >>> loss, params = from_linen(
      ...     lambda apply, b: jnp.mean((apply(b[0]) - b[1]) ** 2), module, variables)
      >>> float(loss(params, (jnp.ones((4, 3)), jnp.zeros((4, 1))))) >= 0
      True
    """
    import flax.linen as nn

    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a flax.linen.Module, got {type(module).__name__}")
    if not hasattr(variables, "keys") or "params" not in variables:
        raise ValueError("variables must be a dict with a 'params' collection (module.init(...))")
    params = variables["params"]
    rest = {k: v for k, v in variables.items() if k != "params"}

    def loss(p: Any, batch: Any) -> Any:
        def apply(*args: Any, **kwargs: Any) -> Any:
            return module.apply({"params": p, **rest}, *args, **kwargs)

        return loss_fn(apply, batch)

    return loss, params


def adapt(loss_fn: LossFn, params: Any) -> tuple[LossFn, Any]:
    """Applies :func:`from_nnx` / :func:`from_linen` when ``params`` is a Flax model."""
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and isinstance(params, nnx.Module):
        return from_nnx(loss_fn, params)
    linen = sys.modules.get("flax.linen")
    if (
        linen is not None
        and isinstance(params, tuple)
        and len(params) == 2
        and isinstance(params[0], linen.Module)
    ):
        return from_linen(loss_fn, params[0], params[1])
    return loss_fn, params
