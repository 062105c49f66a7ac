"""AdaBound and AMSBound (Luo et al. 2019), matching the reference ``adabound`` package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax._checks import check_number, concrete, float_dtype, python_one_minus


class AdaBoundState(NamedTuple):
    """State of :func:`adabound`.

    Attributes:
      count: updates applied so far (int32); the reference's ``step`` is
        ``count`` after the update.
      mu: first-moment EMA of the gradients (the reference's ``exp_avg``).
      nu: second-moment EMA (``exp_avg_sq``).
      nu_max: AMSBound's running maximum of ``nu`` (``max_exp_avg_sq``);
        ``None`` when ``amsbound=False``.
      base_lr: the rate at step 0, which ``final_lr`` is quoted against (the
        reference's ``base_lr``).
      learning_rate: the rate of the latest update (at ``init``: the rate the
        first update will use); what :func:`lrjax.get_learning_rate` reads.
    """

    count: jax.Array
    mu: Any
    nu: Any
    nu_max: Any
    base_lr: jax.Array
    learning_rate: jax.Array


def adabound(
    learning_rate: float | Callable[[jax.Array], jax.Array] = 1e-3,
    final_lr: float = 0.1,
    gamma: float = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsbound: bool = False,
) -> optax.GradientTransformation:
    """AdaBound: Adam whose per-parameter step is clipped into bounds that close on SGD.

    Step by step the same as the reference ``adabound.AdaBound`` (PyTorch).
    With ``k = count + 1`` and gradient ``g`` (plus ``weight_decay * params``,
    the reference's L2 penalty)::

        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2             (AMSBound: nu_max = max(nu_max, nu))
        step = lr * sqrt(1 - b2**k) / (1 - b1**k)
        final = final_lr * lr / base_lr
        lower = final * (1 - 1 / (gamma * k + 1))
        upper = final * (1 + 1 / (gamma * k))
        update = -clip(step / (sqrt(nu) + eps), lower, upper) * mu

    **Schedules.** The reference scales ``final_lr`` by ``lr / base_lr``, where
    ``base_lr`` is the rate the optimizer was built with and ``lr`` is whatever
    a PyTorch scheduler has set since. Here ``learning_rate`` may be a schedule
    (or the transform may sit in ``optax.inject_hyperparams``): ``lr`` is its
    value at the update (step ``count``) and ``base_lr`` its value at step 0,
    fixed at ``init`` and kept in the state. That is the reference driven by a
    ``LambdaLR`` whose first value is the schedule's: the lower/upper bounds
    follow the schedule's decay. If the rate at step 0 is 0 (a warmup from
    zero) the ratio is undefined; ``final_lr`` is then used unscaled.

    Args:
      learning_rate: Adam's rate, a number or a schedule (``count -> rate``).
      final_lr: the SGD rate the bounds converge to (at ``base_lr``).
      gamma: convergence speed of the bounds, in ``[0, 1)``; 0 leaves them
        at ``[0, inf)`` (Adam).
      b1: first-moment decay, in ``[0, 1)``.
      b2: second-moment decay, in ``[0, 1)``.
      eps: added to ``sqrt(nu)``, ``>= 0``.
      weight_decay: L2 penalty added to the gradient. ``update`` needs ``params``
        unless it is a concrete 0; a traced value (``optax.inject_hyperparams``
        under ``jax.jit``, where the default 0.0 is injected too) needs them as well.
      amsbound: use the AMSBound variant (running maximum of ``nu``).

    Returns:
      An ``optax.GradientTransformation`` whose state is an
      :class:`AdaBoundState`.

    Raises:
      ValueError: an argument out of range, naming the parameter.

    Example:
      >>> import jax.numpy as jnp, optax, lrjax
      >>> tx = lrjax.adabound(learning_rate=1e-3, final_lr=0.1)
      >>> params = {"w": jnp.ones(3)}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.ones(3)}, state, params)
      >>> params = optax.apply_updates(params, updates)
    """
    if not isinstance(amsbound, bool):
        raise TypeError(f"amsbound must be a bool, got {amsbound!r}")
    if not callable(learning_rate):
        check_number("learning_rate", learning_rate, lambda x: x >= 0, ">= 0")
    check_number("final_lr", final_lr, lambda x: x >= 0, ">= 0")
    check_number("gamma", gamma, lambda x: (x >= 0) & (x < 1), "in [0, 1)")
    check_number("b1", b1, lambda x: (x >= 0) & (x < 1), "in [0, 1)")
    check_number("b2", b2, lambda x: (x >= 0) & (x < 1), "in [0, 1)")
    check_number("eps", eps, lambda x: x >= 0, ">= 0")
    check_number("weight_decay", weight_decay, lambda x: x >= 0, ">= 0")
    wd = concrete(weight_decay)
    no_decay = wd is not None and wd.shape == () and float(wd) == 0.0
    # (1 - b) in float64 when b is a Python number: 1 - 0.999 is off by 1.3e-5 in float32.
    one_minus_b1, one_minus_b2 = python_one_minus(b1), python_one_minus(b2)

    def rate_at(count: jax.Array) -> jax.Array:
        lr = learning_rate(count) if callable(learning_rate) else learning_rate
        return jnp.asarray(lr).astype(float_dtype())

    def init_fn(params: Any) -> AdaBoundState:
        zeros = lambda: optax.tree.zeros_like(params)
        lr0 = rate_at(jnp.zeros((), jnp.int32))
        return AdaBoundState(
            count=jnp.zeros((), jnp.int32),
            mu=zeros(),
            nu=zeros(),
            nu_max=zeros() if amsbound else None,
            base_lr=lr0,
            learning_rate=lr0,
        )

    def update_fn(updates, state, params=None):
        if not no_decay:
            if params is None:
                raise ValueError(
                    "adabound needs params, update(g, state, params), when weight_decay is "
                    "not a concrete 0 (nonzero, or traced as under optax.inject_hyperparams "
                    "inside jax.jit)"
                )
            updates = jax.tree.map(lambda g, p: g + weight_decay * p, updates, params)
        lr = rate_at(state.count)
        k = optax.safe_increment(state.count)
        kf = k.astype(lr.dtype)
        c1 = jnp.asarray(one_minus_b1, lr.dtype)
        c2 = jnp.asarray(one_minus_b2, lr.dtype)
        mu = jax.tree.map(lambda m, g: b1 * m + c1.astype(g.dtype) * g, state.mu, updates)
        nu = jax.tree.map(lambda v, g: b2 * v + c2.astype(g.dtype) * (g * g), state.nu, updates)
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu) if amsbound else None
        # 1 - b**k = -expm1(k * log1p(-(1 - b))): accurate in float32 for b near 1.
        bc1 = -jnp.expm1(kf * jnp.log1p(-c1))
        bc2 = -jnp.expm1(kf * jnp.log1p(-c2))
        step_size = lr * jnp.sqrt(bc2) / bc1
        base = state.base_lr
        final = jnp.where(base != 0, final_lr * lr / jnp.where(base != 0, base, 1), final_lr)
        gk = gamma * kf
        lower = final * (gk / (gk + 1))  # = 1 - 1/(gk + 1), without float32 cancellation
        upper = final * (1 + 1 / gk)

        def one(m, v):
            denom = jnp.sqrt(v) + jnp.asarray(eps, v.dtype)
            size = jnp.clip(step_size.astype(v.dtype) / denom, lower, upper).astype(v.dtype)
            return -size * m

        updates = jax.tree.map(one, mu, nu_max if amsbound else nu)
        return updates, AdaBoundState(
            count=k, mu=mu, nu=nu, nu_max=nu_max, base_lr=state.base_lr, learning_rate=lr
        )

    return optax.GradientTransformation(init_fn, update_fn)
