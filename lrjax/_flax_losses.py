"""Adapters from Flax models to the plain ``loss_fn(params, batch)`` form.

Standalone helpers for code written against a parameter pytree (your own
``jax.grad`` loop, a function that takes ``(params, batch)``). With Flax the
loss takes the model rather than a parameter tree:

- NNX: ``loss_fn(model, batch)``; :func:`from_nnx` splits the module into its
  ``nnx.Param`` state (trained) and every other variable (held fixed: BatchNorm
  statistics and RNG counters do not advance).
- Linen: ``loss_fn(apply, batch)`` where ``apply(*args, **kwargs)`` is
  ``module.apply({"params": params, **other_collections}, *args, **kwargs)``;
  :func:`from_linen` trains ``variables["params"]`` and holds the other
  collections (e.g. ``batch_stats``) fixed, so use BatchNorm in inference mode.

:func:`lrjax.range_test`, :func:`lrjax.lr_find`, :func:`lrjax.sweep` and
:func:`lrjax.tune` do not call these: they take an ``nnx.Module`` or a
``(linen_module, variables)`` pair as it is and carry its non-parameter state
(BatchNorm statistics, RNG streams) per copy, which these adapters hold fixed.
"""

from __future__ import annotations

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
