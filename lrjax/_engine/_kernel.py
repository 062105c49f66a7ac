"""The compiled kernel: copies of one model trained side by side.

One copy is a ``lax.scan`` over steps; copies are ``jax.vmap``-ed (over
hyperparameters, and over seeds). Each copy has its own optimizer
hyperparameters ``h`` (a rate, a ramp of rates, a dict of values) and builds its
transform with ``make_tx(h, step)`` inside the trace, so hyperparameters are
data: changing them never recompiles.

Steps are cut into blocks of ``block`` steps (all steps in one block unless the
data are streamed or evaluated along the way); a call trains ``G`` blocks, and
with evaluation data, every block ends with an evaluation. Steps past
``num_steps`` (the padding of the last block) change nothing.

Divergence: each copy keeps a debiased EMA of its loss (beta 0.98, as fastai's
``AvgSmoothLoss``). A copy whose raw loss is non-finite, or whose smoothed loss
rises above ``diverge_factor`` x its best smoothed loss (for a negative best:
by more than ``(diverge_factor - 1) * |best|``), is frozen from that step on:
its parameters, optimizer state and model state stop changing, its later
losses, aux values and evaluations are NaN. Copies never interact.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrjax._checks import float_dtype

#: EMA coefficient of the smoothed loss (fastai's ``AvgSmoothLoss`` default).
BETA = 0.98


class Carry(NamedTuple):
    """What one copy carries from step to step."""

    params: Any
    opt_state: Any
    state: Any
    ema: jax.Array
    best: jax.Array
    stopped: jax.Array
    stop_step: jax.Array


class StepOut(NamedTuple):
    """What a step records, per copy (NaN once the copy stopped).

    Attributes:
      loss: the raw training loss.
      smoothed: the debiased EMA of the loss.
      aux: ``has_aux``: the aux pytree; else ``()``.
    """

    loss: jax.Array
    smoothed: jax.Array
    aux: Any


class BlockOut(NamedTuple):
    """What a block of steps records: the steps (stacked ``[block, ...]``) and, with
    ``Spec.evaluate``, the evaluation after the block (else 0)."""

    steps: StepOut
    val_score: jax.Array


class FinalOut(NamedTuple):
    """The end of a run, per copy.

    Attributes:
      stop_step: the step the copy diverged at, ``-1`` if never.
      val_loss: the evaluation after the last step (0 without evaluation data).
      params: ``return_params``: the final parameters; else ``()``.
      state: ``return_params``: the final model state; else ``()``.
    """

    stop_step: jax.Array
    val_loss: jax.Array
    params: Any
    state: Any


@dataclasses.dataclass(frozen=True)
class Spec:
    """The static part of a run (hashable: one compilation per distinct spec).

    Attributes:
      behaviour: the model's pure functions (see :mod:`lrjax._engine._model`).
      make_tx: ``(h, step) -> GradientTransformation`` (a :class:`Static`).
      batch_fn: ``step -> batch`` (a :class:`Static`) or ``None`` for data blocks.
      num_steps: training steps per copy.
      block: steps per block.
      evaluate: evaluate on the validation data after every block.
      return_params: hand back each copy's final parameters.
      seeded: ``params``/``state`` carry a leading seed axis.
      padded: the last block runs past ``num_steps`` (those steps are masked;
        without padding the mask is left out of the program).
      unroll: a block's steps are straight-line code, not a loop (the
        ``"blocks"`` strategy: XLA on CPU runs convolutions inside a loop
        several times slower than outside one).
    """

    behaviour: Any
    make_tx: Any
    batch_fn: Any
    num_steps: int
    block: int
    evaluate: bool
    return_params: bool
    seeded: bool
    padded: bool = True
    unroll: bool = False

    def __hash__(self) -> int:
        # jit hashes its static arguments at every call: hash the fields once
        try:
            return self._hash  # type: ignore[attr-defined]
        except AttributeError:
            h = hash(tuple(getattr(self, f.name) for f in dataclasses.fields(self)))
            object.__setattr__(self, "_hash", h)
            return h


def _keep_if(cond: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda n, o: jnp.where(cond, o, n), new, old)


def nan_where(cond: jax.Array, tree: Any) -> Any:
    def mask(x):
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.floating):
            return jnp.where(cond, jnp.asarray(jnp.nan, x.dtype), x)
        return x

    return jax.tree.map(mask, tree)


# --------------------------------------------------------------- one copy


def optimizer(h: Any, step: Any, spec: Spec) -> optax.GradientTransformation:
    """A copy's optimizer (``spec.make_tx(h, step)``), handed the parameters as the
    user's own training loop would hand them (:meth:`Behaviour.optimizer_params`:
    an NNX model's state as a nested dict, an Equinox model's filtered module),
    so transforms that read parameter paths or shapes work; its updates come
    back in the engine's form."""
    tx = spec.make_tx(h, step)
    b = spec.behaviour

    def init(params):
        return tx.init(b.optimizer_params(params))

    def update(grads, state, params=None):
        view = None if params is None else b.optimizer_params(params)
        updates, state = tx.update(b.optimizer_params(grads), state, view)
        return b.from_optimizer(updates), state

    return optax.GradientTransformation(init, update)


def _init(h, params, state, key, spec: Spec) -> Carry:
    dtype = float_dtype()
    key = jax.random.wrap_key_data(key)
    return Carry(
        params=params,
        opt_state=optimizer(h, jnp.int32(0), spec).init(params),
        state=spec.behaviour.seed(state, key),
        ema=jnp.zeros((), dtype),
        best=jnp.asarray(jnp.inf, dtype),
        stopped=jnp.zeros((), bool),
        stop_step=jnp.asarray(-1, jnp.int32),
    )


def _step(c: Carry, t, batch, h, key, factor, spec: Spec):
    dtype = float_dtype()
    beta = jnp.asarray(BETA, dtype)

    def loss_of(p):
        loss, new_state, aux = spec.behaviour.loss(p, c.state, batch, jax.random.fold_in(key, t))
        return loss, (new_state, aux)

    (loss, (new_state, aux)), grads = jax.value_and_grad(loss_of, has_aux=True)(c.params)
    loss = jnp.asarray(loss).astype(dtype)
    ema = beta * c.ema + (1 - beta) * loss
    smooth = ema / (1 - beta ** (t + 1).astype(dtype))
    best = jnp.minimum(c.best, smooth)
    # smooth > f * best for the usual best >= 0; for a negative best the
    # allowed rise is (f - 1) * |best|, so negative losses work too.
    over = jnp.where(best >= 0, smooth > factor * best, smooth - best > (factor - 1) * -best)
    bad = ~jnp.isfinite(loss) | ~jnp.isfinite(smooth) | over
    stopped = c.stopped | bad
    updates, opt_state = optimizer(h, t, spec).update(grads, c.opt_state, c.params)
    new = Carry(
        params=optax.apply_updates(c.params, updates),
        opt_state=opt_state,
        state=new_state,
        ema=ema,
        best=best,
        stopped=stopped,
        stop_step=jnp.where(c.stopped | ~bad, c.stop_step, t),
    )
    # A copy that goes bad at step t keeps the parameters it had at step t.
    new = _keep_if(stopped, new, c)._replace(stopped=stopped, stop_step=new.stop_step)
    if spec.padded:
        new = _keep_if(t >= spec.num_steps, new, c)  # padding steps change nothing
    nan = jnp.asarray(jnp.nan, dtype)
    out = StepOut(
        jnp.where(c.stopped, nan, loss),
        jnp.where(c.stopped, nan, smooth),
        nan_where(c.stopped, aux),
    )
    return new, out


def evaluate(c: Carry, val, spec: Spec) -> jax.Array:
    """Mean of the evaluation score over the evaluation batches; NaN once stopped."""
    scores = jax.lax.map(lambda b: spec.behaviour.evaluate(c.params, c.state, b), val)
    score = jnp.mean(jnp.asarray(scores).astype(float_dtype()))
    return jnp.where(c.stopped, jnp.nan, score)


def _train(c: Carry, blocks, t0, h, key, factor, val, spec: Spec):
    """``G`` blocks of ``spec.block`` steps from step ``t0``; evaluates after each."""
    key = jax.random.wrap_key_data(key)
    n_blocks = jax.tree.leaves(blocks)[0].shape[0]

    def one_block(c, xs):
        b, data = xs
        ts = t0 + b * spec.block + jnp.arange(spec.block, dtype=jnp.int32)

        def body(c, xs):
            t, batch = xs
            if spec.batch_fn is not None:
                batch = spec.batch_fn(t)
            return _step(c, t, batch, h, key, factor, spec)

        if spec.unroll:  # straight-line code (lax.scan keeps a loop for one step)
            per_step = []
            for i in range(spec.block):
                c, out = body(c, (ts[i], jax.tree.map(lambda x, i=i: x[i], data)))
                per_step.append(out)
            outs = jax.tree.map(lambda *xs: jnp.stack(xs), *per_step)
        else:
            c, outs = jax.lax.scan(body, c, (ts, data))
        score = evaluate(c, val, spec) if spec.evaluate else jnp.zeros(())
        return c, BlockOut(outs, score)

    if n_blocks == 1:  # one block (all steps in memory): no loop around it to compile
        c, out = one_block(c, (jnp.int32(0), jax.tree.map(lambda x: x[0], blocks)))
        return c, jax.tree.map(lambda x: x[None], out)
    index = jnp.arange(n_blocks, dtype=jnp.int32)
    return jax.lax.scan(one_block, c, (index, blocks))


def _finish(c: Carry, val, spec: Spec):
    val_loss = evaluate(c, val, spec) if val is not None else jnp.zeros(())
    if spec.return_params:
        return FinalOut(c.stop_step, val_loss, c.params, c.state)
    return FinalOut(c.stop_step, val_loss, (), ())


# ------------------------------------------------------ copies x seeds


def _map(fn: Callable[..., Any], in_axes: tuple) -> Callable:
    """``jax.vmap(fn, in_axes)``, except over an axis of size 1: then ``fn`` runs on
    the one slice as it is (a vmapped convolution with per-copy weights becomes a
    grouped convolution, which XLA on CPU runs slower even for one group)."""

    def mapped(*args):
        sizes = {
            x.shape[ax]
            for a, ax in zip(args, in_axes)
            if ax is not None
            for x in jax.tree.leaves(a)
        }
        if sizes != {1}:
            return jax.vmap(fn, in_axes=in_axes)(*args)
        one = [a if ax is None else jax.tree.map(lambda x: x[0], a) for a, ax in zip(args, in_axes)]
        return jax.tree.map(lambda x: jnp.expand_dims(x, 0), fn(*one))

    return mapped


def over_copies(fn: Callable[..., Any], copy_axes: tuple, seed_axes: tuple) -> Callable:
    """``vmap`` over copies (inner) and seeds (outer)."""
    return _map(_map(fn, copy_axes), seed_axes)


def init_copies(hs, params, state, keys, spec: Spec):
    s = 0 if spec.seeded else None
    fn = functools.partial(_init, spec=spec)
    return over_copies(fn, (0, None, None, 0), (None, s, s, 0))(hs, params, state, keys)


def train_copies(carry, blocks, t0, hs, keys, factor, val, spec: Spec):
    fn = functools.partial(_train, spec=spec)
    axes_c = (0, None, None, 0, 0, None, None)
    axes_s = (0, None, None, None, 0, None, None)
    return over_copies(fn, axes_c, axes_s)(carry, blocks, t0, hs, keys, factor, val)


def evaluate_copies(carry, val, spec: Spec):
    """Every copy's evaluation score ``[seeds, K]`` (NaN once stopped), in a program."""
    fn = functools.partial(evaluate, spec=spec)
    return over_copies(fn, (0, None), (0, None))(carry, val)


def finish_copies(carry, val, spec: Spec):
    fn = functools.partial(_finish, spec=spec)
    return over_copies(fn, (0, None), (0, None))(carry, val)


def copy_keys(base_key, index):
    """Each copy's raw key ``fold_in(base_key, index)``, ``index`` ``[seeds, K]``.

    Computed inside the compiled program (eagerly it would be a small program
    of its own to compile).
    """
    base = jax.random.wrap_key_data(base_key)
    one = lambda i: jax.random.key_data(jax.random.fold_in(base, i))
    return jax.vmap(jax.vmap(one))(index)


def replicate(tree: Any, sharding: Any) -> Any:
    if sharding is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, sharding)


@functools.partial(jax.jit, static_argnames=("spec", "out_sharding"))
def run_all(hs, params, state, base_key, index, blocks, factor, val, *, spec: Spec, out_sharding):
    """Init, every block and the final evaluation in one program (data in memory)."""
    keys = copy_keys(base_key, index)
    carry = init_copies(hs, params, state, keys, spec)
    carry, per_block = train_copies(carry, blocks, jnp.int32(0), hs, keys, factor, val, spec)
    return replicate((per_block, finish_copies(carry, val, spec)), out_sharding)


@functools.partial(jax.jit, static_argnames=("spec",))
def init(hs, params, state, base_key, index, *, spec: Spec):
    """The copies' initial carries and keys (streamed runs)."""
    keys = copy_keys(base_key, index)
    return init_copies(hs, params, state, keys, spec), keys


@functools.partial(jax.jit, static_argnames=("spec", "out_sharding"), donate_argnums=(0,))
def train(carry, blocks, t0, hs, keys, factor, val, *, spec: Spec, out_sharding):
    """Trains ``G`` more blocks from ``carry`` (streamed runs)."""
    carry, per_block = train_copies(carry, blocks, t0, hs, keys, factor, val, spec)
    return carry, replicate(per_block, out_sharding)


def _train_block(carry, blocks, index, t0, hs, keys, factor, *, spec: Spec, out_sharding):
    """Trains block ``index`` of ``blocks`` from step ``t0`` (host-driven strategies).

    In-memory data stay on the device and the block is sliced out here;
    streamed data come one block at a time (``index`` 0). No evaluation: see
    :func:`evaluate_all`.
    """
    data = jax.tree.map(lambda x: jax.lax.dynamic_index_in_dim(x, index, keepdims=True), blocks)
    carry, out = train_copies(carry, data, t0, hs, keys, factor, None, spec)
    return carry, replicate(out.steps, out_sharding)


#: :func:`_train_block`, the carry's buffers reused for the new carry: for a carry
#: that only the previous step made (a jitted program may hand back an input
#: it did not change as its output, so a carry from elsewhere may share buffers).
train_block = jax.jit(_train_block, static_argnames=("spec", "out_sharding"), donate_argnums=(0,))
#: :func:`_train_block`, the carry kept: for a carry that may share buffers.
train_block_kept = jax.jit(_train_block, static_argnames=("spec", "out_sharding"))


@functools.partial(jax.jit, static_argnames=("spec", "out_sharding"))
def evaluate_all(carry, val, *, spec: Spec, out_sharding):
    """Every copy's evaluation score ``[seeds, K]`` (NaN once stopped)."""
    return replicate(evaluate_copies(carry, val, spec), out_sharding)


@functools.partial(jax.jit, static_argnames=("spec", "out_sharding"))
def finish(carry, val, *, spec: Spec, out_sharding):
    """Stop steps, final evaluation and (optionally) parameters and state (streamed runs)."""
    return replicate(finish_copies(carry, val, spec), out_sharding)
