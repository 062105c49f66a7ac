"""Host-side training callbacks as pure state machines.

:func:`early_stopping` is Keras' ``EarlyStopping`` as an ``init``/``update``
pair over a NamedTuple of arrays: call it once per epoch in a Python loop, or
inside ``jax.jit``, ``lax.scan`` and ``lax.while_loop`` (the state's
``should_stop`` is a boolean array, fit for a ``while_loop`` condition).
:func:`keep_best` carries the parameters of the best update alongside it, for
Keras' ``restore_best_weights=True``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lrjax._checks import check_choice, check_number, check_value, float_dtype

__all__ = ["EarlyStopping", "EarlyStoppingState", "early_stopping", "keep_best"]


class EarlyStoppingState(NamedTuple):
    """State of :func:`early_stopping`; every field is a scalar array.

    Attributes:
      should_stop: whether training should stop (bool). Once true it stays true.
      best: the best monitored value so far (NaN before the first monitored
        update); Keras' ``best``.
      best_step: the step (0-based update index) at which ``best`` was seen;
        Keras' ``best_epoch``.
      wait: monitored updates since the last improvement that also beat the
        ``baseline``; Keras' ``wait``.
      step: updates so far (the index the next update gets).
      stopped_step: the step at which ``should_stop`` became true (0 before);
        Keras' ``stopped_epoch``.
      has_best: whether ``best`` holds a value (Keras' ``best is not None``).
    """

    should_stop: jax.Array
    best: jax.Array
    best_step: jax.Array
    wait: jax.Array
    step: jax.Array
    stopped_step: jax.Array
    has_best: jax.Array


class EarlyStopping(NamedTuple):
    """The ``init``/``update`` pair :func:`early_stopping` returns.

    Attributes:
      init: ``() -> EarlyStoppingState``.
      update: ``(state, value) -> EarlyStoppingState``, pure and jit-able.
    """

    init: Any
    update: Any


def early_stopping(
    mode: str = "min",
    min_delta: float = 0.0,
    patience: int = 0,
    baseline: float | None = None,
    start_from_step: int = 0,
) -> EarlyStopping:
    """Stops training when a monitored value has stopped improving (Keras semantics).

    Keras' ``EarlyStopping`` callback, rule for rule, as a pure state machine.
    Each ``update(state, value)`` is one epoch end (Keras' ``on_epoch_end``)
    with ``step = state.step``:

    - before ``start_from_step`` nothing is monitored;
    - ``wait += 1``;
    - ``value`` improves when there is no best yet, or ``value - min_delta >
      best`` (``mode="max"``) / ``value + min_delta < best`` (``"min"``); then
      ``best = value``, ``best_step = step``, and ``wait = 0`` if there is no
      ``baseline`` or ``value`` also improves on it;
    - otherwise, if ``wait >= patience`` and ``step > 0``, ``should_stop``.

    Every numeric argument may also be a JAX array or a tracer (build the
    stopper inside ``jax.vmap`` to watch several settings side by side); they
    are validated only when concrete.

    So with ``patience=p`` training stops after ``p`` updates without
    improvement (one at least, as Keras never stops at step 0). A NaN value
    never improves (except as the very first, as in Keras). ``min_delta`` is
    used by its absolute value, as Keras does.

    Args:
      mode: ``"min"`` (lower is better, a loss) or ``"max"`` (an accuracy).
      min_delta: the least change that counts as an improvement, absolute.
      patience: updates without improvement after which to stop, ``>= 0``.
      baseline: a value to beat: until one value improves on it, ``wait``
        keeps growing even while ``best`` improves.
      start_from_step: updates to skip before monitoring (a warm-up).

    Returns:
      An :class:`EarlyStopping` with ``init()`` and ``update(state, value)``;
      the state is an :class:`EarlyStoppingState`.

    Raises:
      ValueError: an unknown ``mode`` or a bad number, naming the parameter.

    Example:
      >>> import lrjax
      >>> stopper = lrjax.callbacks.early_stopping(patience=2)
      >>> state = stopper.init()
      >>> for val_loss in [1.0, 0.8, 0.9, 0.85, 0.7]:
      ...     state = stopper.update(state, val_loss)
      ...     if state.should_stop:
      ...         break
      >>> int(state.step), float(state.best), int(state.best_step)
      (4, 0.800000011920929, 1)
    """
    check_choice("mode", mode, ("min", "max"))
    check_number("min_delta", min_delta)
    check_number("patience", patience, lambda x: x >= 0, ">= 0", integer=True)
    check_number("start_from_step", start_from_step, lambda x: x >= 0, ">= 0", integer=True)
    if baseline is not None:
        check_number("baseline", baseline)
    delta = jnp.abs(jnp.asarray(min_delta, float_dtype()))

    def improves(value: jax.Array, reference: jax.Array) -> jax.Array:
        if mode == "min":
            return value + delta < reference
        return value - delta > reference

    def init() -> EarlyStoppingState:
        i = jnp.int32
        return EarlyStoppingState(
            should_stop=jnp.zeros((), jnp.bool_),
            best=jnp.full((), jnp.nan, float_dtype()),
            best_step=jnp.zeros((), i),
            wait=jnp.zeros((), i),
            step=jnp.zeros((), i),
            stopped_step=jnp.zeros((), i),
            has_best=jnp.zeros((), jnp.bool_),
        )

    def update(state: EarlyStoppingState, value: Any) -> EarlyStoppingState:
        if not isinstance(state, EarlyStoppingState):
            raise TypeError(
                f"early_stopping.update: expected an EarlyStoppingState, got {type(state).__name__}"
            )
        v = check_value(value, "early_stopping").astype(state.best.dtype)
        monitored = state.step >= start_from_step
        wait = state.wait + 1
        better = ~state.has_best | improves(v, state.best)
        beats_baseline = True if baseline is None else improves(v, jnp.asarray(baseline, v.dtype))
        stop = ~better & (wait >= patience) & (state.step > 0)
        new = EarlyStoppingState(
            should_stop=state.should_stop | stop,
            best=jnp.where(better, v, state.best),
            best_step=jnp.where(better, state.step, state.best_step),
            wait=jnp.where(better & beats_baseline, 0, wait).astype(jnp.int32),
            step=state.step,
            stopped_step=jnp.where(stop & ~state.should_stop, state.step, state.stopped_step),
            has_best=state.has_best | better,
        )
        new = jax.tree.map(lambda a, b: jnp.where(monitored, a, b), new, state)
        return new._replace(step=state.step + 1)

    return EarlyStopping(init=init, update=update)


def keep_best(state: EarlyStoppingState, params: Any, best_params: Any) -> Any:
    """The parameters of the best update so far, for restoring them at the end.

    Call it right after ``state = stopper.update(state, value)`` with the
    parameters that ``value`` was measured on: it returns ``params`` when that
    update set a new best (``state.best_step`` is that update's step), else
    ``best_params``. Start with ``best_params = params``; when the loop ends,
    stopped early or not, ``best_params`` holds the best update's parameters,
    the weights Keras' ``EarlyStopping(restore_best_weights=True)`` restores
    at the end of training (if no update was monitored, ``state.has_best`` is
    false and ``best_params`` is still the start). Pure and jit-able: a
    ``jnp.where`` per leaf, so it also runs inside ``lax.while_loop``,
    ``lax.scan`` and ``jax.vmap``.

    Args:
      state: the :class:`EarlyStoppingState` returned by the latest ``update``.
      params: the parameters the latest monitored value was measured on.
      best_params: the best parameters so far, with the structure of ``params``.

    Returns:
      The new best parameters: ``params`` or ``best_params``, leaf by leaf
      arrays.

    Raises:
      TypeError: ``state`` is not an :class:`EarlyStoppingState`.
      ValueError: ``params`` and ``best_params`` differ in structure.

    Example:
      >>> import jax.numpy as jnp
      >>> from lrjax.callbacks import early_stopping, keep_best
      >>> stopper = early_stopping(patience=1)
      >>> state = stopper.init()
      >>> params = best = {"w": jnp.zeros(())}
      >>> for epoch, val_loss in enumerate([1.0, 0.5, 0.7, 0.6]):
      ...     params = {"w": params["w"] + 1.0}  # one epoch of training
      ...     state = stopper.update(state, val_loss)
      ...     best = keep_best(state, params, best)
      ...     if state.should_stop:
      ...         break
      >>> int(state.best_step), float(best["w"]), float(params["w"])
      (1, 2.0, 3.0)
    """
    if not isinstance(state, EarlyStoppingState):
        raise TypeError(
            f"keep_best: state must be an EarlyStoppingState, got {type(state).__name__}"
        )
    got, want = jax.tree.structure(params), jax.tree.structure(best_params)
    if got != want:
        raise ValueError(
            f"keep_best: params and best_params must have the same structure, got {got} and {want}"
        )
    new_best = state.has_best & (state.best_step == state.step - 1)
    return jax.tree.map(lambda p, b: jnp.where(new_best, p, b), params, best_params)
