"""The machinery shared by transforms that scale updates by a monitored value.

:func:`lrjax.reduce_on_plateau` and :func:`lrjax.bold_driver` differ only in
their *check*: the rule that turns the mean of the last ``accumulation_steps``
monitored values into a new scale. Accumulating the values, running the check
when one is due, the Optax and host-side call forms and the scaling of the
updates live here once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import optax

from lrjax._checks import check_value

S = TypeVar("S")  # a NamedTuple state with scale, num_checks, count and accum fields


def scale_by_monitor(
    name: str,
    state_type: type[S],
    init_fn: Callable[..., S],
    check: Callable[[S, jax.Array], S],
    accumulation_steps: Any,
) -> optax.GradientTransformationExtraArgs:
    """An Optax transform scaling updates by ``state.scale``, set by ``check``.

    Each call adds the monitored ``value`` to ``state.accum``; every
    ``accumulation_steps`` calls, ``check(state, mean)`` returns the state with
    its rule applied, and the accumulator restarts (``num_checks`` counts the
    checks). ``update(state, value)`` with a state first is the host-side form:
    it returns the next state only.

    Args:
      name: the transform's name, for error messages.
      state_type: its state's NamedTuple class.
      init_fn: ``(params=None) -> state``.
      check: ``(state, mean value) -> state`` with the rule applied; it need not
        touch ``num_checks``, ``count`` or ``accum``.
      accumulation_steps: values per check (a number or a tracer).

    Returns:
      The ``optax.GradientTransformationExtraArgs``.
    """

    def step(s: S, value: Any) -> S:
        v = check_value(value, name).astype(s.accum.dtype)
        count = s.count + 1
        accum = s.accum + v
        waiting = s._replace(count=count, accum=accum)
        checked = check(waiting, accum / count.astype(accum.dtype))._replace(
            num_checks=s.num_checks + 1,
            count=jnp.zeros_like(s.count),
            accum=jnp.zeros_like(s.accum),
        )
        due = count >= accumulation_steps
        return jax.tree.map(lambda a, b: jnp.where(due, a, b), checked, waiting)

    def update_fn(updates, state=None, params=None, *, value=None, **extra_args):
        del params, extra_args
        if isinstance(updates, state_type):  # host form: update(state, value)
            if state is not None and value is not None:
                raise TypeError("host-side update takes (state, value): value given twice")
            return step(updates, value if value is not None else state)
        if not isinstance(state, state_type):
            raise TypeError(f"{name}: expected a {state_type.__name__}, got {type(state).__name__}")
        state = step(state, value)
        updates = jax.tree.map(lambda u: u * state.scale.astype(u.dtype), updates)
        return updates, state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
