"""The training engine shared by the range test and :func:`lrjax.sweep`.

Many copies of one model are trained side by side: one ``jax.jit`` of
``jax.vmap`` (over copies, and over initialisations when there are several
seeds) of a ``lax.scan`` over steps. Each copy has its own optimizer
hyperparameters ``h`` (a learning rate, a ramp of rates, a dict of values) and
builds its transform with ``make_tx(h, step)`` inside the traced function, so
hyperparameters are data: changing them never recompiles.

Divergence: each copy keeps a debiased EMA of its loss (beta 0.98, as fastai's
``AvgSmoothLoss``). A copy whose raw loss is non-finite, or whose smoothed loss
exceeds ``diverge_factor`` x its best smoothed loss, is frozen from that step
on (parameters and optimizer state stop changing) and its later losses are NaN.
Copies never interact, so a bad copy cannot change another copy's numbers.

On the host, copies are evaluated in fixed-size chunks (the last one padded),
so one compilation serves every chunk; chunks report progress, can be sharded
over a device mesh, and a ``KeyboardInterrupt`` keeps the finished chunks.
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lrjax._range_test._progress import ProgressBar, progress_enabled
from lrjax.schedules._base import float_dtype

#: EMA coefficient of the smoothed loss (fastai's ``AvgSmoothLoss`` default).
BETA = 0.98


# ----------------------------------------------------------- static callables


class Static:
    """Hashes and compares a callable by identity, so it can be a static jit arg.

    The same function object passed again hits the compilation cache, whatever
    its own ``__eq__``/``__hash__`` (bound methods of unhashable objects too).
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn

    def __hash__(self) -> int:
        return hash((type(self), id(self.fn)))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.fn is self.fn  # type: ignore[attr-defined]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


class ConstantRate(Static):
    """``make_tx``: ``h`` is a scalar rate, ``optimizer(h)`` at every step."""

    def __call__(self, h: Any, step: Any) -> optax.GradientTransformation:
        return self.fn(h)


class RampRate(Static):
    """``make_tx``: ``h`` is a ``[num_steps]`` array of rates, ``optimizer(h[step])``."""

    def __call__(self, h: Any, step: Any) -> optax.GradientTransformation:
        return self.fn(h[step])


class KwargsOptimizer(Static):
    """``make_tx``: ``h`` is a dict of scalars, ``make_optimizer(**h)``."""

    def __call__(self, h: Any, step: Any) -> optax.GradientTransformation:
        return self.fn(**h)


# ----------------------------------------------------------------- validation


def check_num_steps(num_steps: Any) -> int:
    """``num_steps`` as an int >= 1, or a ValueError/TypeError naming it."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, numbers.Integral):
        raise TypeError(f"num_steps must be an int >= 1, got {num_steps!r}")
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps!r}")
    return int(num_steps)


def check_diverge_factor(diverge_factor: Any) -> float:
    """``diverge_factor`` as a float > 1 (``None`` or ``inf``: never on loss growth)."""
    if diverge_factor is None:
        return math.inf
    if isinstance(diverge_factor, bool) or not isinstance(diverge_factor, numbers.Real):
        raise TypeError(f"diverge_factor must be a number > 1 or None, got {diverge_factor!r}")
    f = float(diverge_factor)
    if math.isnan(f) or f <= 1:
        raise ValueError(f"diverge_factor must be > 1 (or None to disable), got {diverge_factor!r}")
    return f


def num_batches(batches: Any) -> int | None:
    """The length of the leading (step) axis of ``batches``; ``None`` if callable.

    Raises:
      ValueError: ``batches`` has no array leaves, a scalar leaf, or leaves whose
        leading axes differ.
    """
    if callable(batches):
        return None
    leaves = jax.tree_util.tree_leaves_with_path(batches)
    if not leaves:
        raise ValueError(
            "batches must be a pytree of arrays with a leading step axis, or a callable "
            f"step -> batch; got {type(batches).__name__} with no array leaves"
        )
    sizes = {}
    for path, leaf in leaves:
        shape = np.shape(leaf)
        if len(shape) == 0:
            raise ValueError(
                f"batches{jax.tree_util.keystr(path)} is a scalar; every leaf of batches "
                "needs a leading step axis"
            )
        sizes[jax.tree_util.keystr(path) or "<root>"] = shape[0]
    if len(set(sizes.values())) > 1:
        raise ValueError(
            f"batches have inconsistent leading (step) axes: {sizes}; every leaf must have "
            "the same number of steps"
        )
    return next(iter(sizes.values()))


def check_steps_vs_batches(num_steps: int, batches: Any) -> None:
    """Raises ValueError naming ``num_steps`` when there are fewer batches than steps."""
    n = num_batches(batches)
    if n is not None and num_steps > n:
        raise ValueError(
            f"num_steps={num_steps} is larger than the number of batches ({n}, the leading "
            "axis of batches); pass more batches, a callable step -> batch, or fewer num_steps"
        )


def example_batch(batches: Any) -> Any:
    """The shape/dtype structure of one batch (traced, nothing computed)."""
    if callable(batches):
        return jax.eval_shape(batches, jax.ShapeDtypeStruct((), jnp.int32))
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x)[1:], jnp.result_type(x)), batches
    )


def _describe(x: Any) -> str:
    try:
        return f"{jnp.result_type(x)}{list(np.shape(x))}"
    except Exception:
        return type(x).__name__


def check_loss_fn(loss_fn: Any, params: Any, batch: Any) -> None:
    """Checks that ``loss_fn(params, batch)`` is a real scalar (by tracing it once)."""
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (params, batch) -> scalar, got {loss_fn!r}")
    try:
        out = jax.eval_shape(loss_fn, params, batch)
    except (TypeError, ValueError) as e:  # shape/dtype mismatches of params and batches
        kind = TypeError if isinstance(e, TypeError) else ValueError
        raise kind(
            f"loss_fn(params, batch) failed on (params, one batch) = "
            f"{jax.tree.map(_describe, (params, batch))}; check that params and batches "
            f"fit the model: {e}"
        ) from e
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise ValueError(
            f"loss_fn must return a scalar array, got a {type(out).__name__} "
            f"({jax.tree.structure(out)}); return the loss alone, not (loss, aux)"
        )
    if out.shape != ():
        raise ValueError(
            f"loss_fn must return a scalar, got shape {out.shape}; reduce it (e.g. .mean())"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"loss_fn must return a float scalar, got dtype {out.dtype}")


def check_params(params: Any, name: str = "params") -> None:
    """Raises unless ``params`` is a non-empty pytree of float arrays."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    if not leaves:
        raise ValueError(f"{name} must be a pytree with at least one array, got {params!r}")
    for path, leaf in leaves:
        where = f"{name}{jax.tree_util.keystr(path)}"
        try:
            dtype = jnp.result_type(leaf)
        except TypeError:
            raise TypeError(f"{where} must be a float array to be trained, got {leaf!r}") from None
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"{where} must be a float array to be trained, got dtype {dtype}")
        if not isinstance(leaf, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(leaf))):
            raise ValueError(f"{where} holds non-finite values (NaN or inf); cannot train from it")


def check_optimizer(optimizer: Any, name: str = "optimizer") -> None:
    """Raises TypeError unless ``optimizer(lr)`` gives an Optax transformation."""
    if not callable(optimizer) or isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"{name} must be a callable lr -> optax.GradientTransformation (e.g. optax.adam), "
            f"got {optimizer!r}"
        )
    tx = optimizer(1e-3)
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(
            f"{name}(lr) must return an optax.GradientTransformation, got {type(tx).__name__}"
        )


def make_init_params(
    params: Any, init_fn: Callable[[jax.Array], Any] | None, seeds: Any
) -> tuple[Any, bool]:
    """Initial parameters and whether they carry a leading seed axis.

    With ``init_fn``, seed ``i`` starts from ``init_fn(keys[i])`` where
    ``keys = jax.random.split(jax.random.PRNGKey(0), seeds)``.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, numbers.Integral) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}")
    if init_fn is None:
        if seeds > 1:
            raise ValueError(
                f"seeds={seeds} needs init_fn (key -> params) to draw the initialisations"
            )
        if params is None:
            raise ValueError("params is None: pass initial params or init_fn")
        check_params(params)
        return params, False
    if not callable(init_fn):
        raise TypeError(f"init_fn must be a callable key -> params, got {init_fn!r}")
    keys = jax.random.split(jax.random.PRNGKey(0), int(seeds))
    stacked = jax.vmap(init_fn)(keys)
    check_params(stacked, "init_fn(key)")
    if params is not None and jax.tree.structure(params) != jax.tree.structure(stacked):
        raise ValueError(
            "params and init_fn(key) have different tree structures: "
            f"{jax.tree.structure(params)} vs {jax.tree.structure(stacked)}"
        )
    return stacked, True


# ------------------------------------------------------------------ the kernel


class _Carry(NamedTuple):
    params: Any
    opt_state: Any
    ema: jax.Array
    best: jax.Array
    stopped: jax.Array
    stop_step: jax.Array


def _keep_if(stopped: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda n, o: jnp.where(stopped, o, n), new, old)


def _train_copy(h, params, data, diverge_factor, *, loss_fn, make_tx, batch_fn, num_steps):
    """One copy: ``num_steps`` steps of training with hyperparameters ``h``."""
    dtype = float_dtype()
    beta = jnp.asarray(BETA, dtype)
    grad_fn = jax.value_and_grad(loss_fn)
    init = _Carry(
        params=params,
        opt_state=make_tx(h, jnp.int32(0)).init(params),
        ema=jnp.zeros((), dtype),
        best=jnp.asarray(jnp.inf, dtype),
        stopped=jnp.zeros((), bool),
        stop_step=jnp.asarray(-1, jnp.int32),
    )

    def body(c: _Carry, xs):
        t, batch = xs
        if batch_fn is not None:
            batch = batch_fn(t)
        loss, grads = grad_fn(c.params, batch)
        loss = jnp.asarray(loss).astype(dtype)
        ema = beta * c.ema + (1 - beta) * loss
        smooth = ema / (1 - beta ** (t + 1).astype(dtype))
        best = jnp.minimum(c.best, smooth)
        # smooth > f * best for the usual best >= 0; for a negative best the
        # allowed rise is (f - 1) * |best|, so negative losses work too.
        over = jnp.where(
            best >= 0, smooth > diverge_factor * best, smooth - best > (diverge_factor - 1) * -best
        )
        bad = ~jnp.isfinite(loss) | ~jnp.isfinite(smooth) | over
        stopped = c.stopped | bad
        updates, opt_state = make_tx(h, t).update(grads, c.opt_state, c.params)
        new = _Carry(
            params=optax.apply_updates(c.params, updates),
            opt_state=opt_state,
            ema=ema,
            best=best,
            stopped=stopped,
            stop_step=jnp.where(c.stopped | ~bad, c.stop_step, t),
        )
        new = _keep_if(stopped, new, c)._replace(stopped=stopped, stop_step=new.stop_step)
        nan = jnp.asarray(jnp.nan, dtype)
        out = (jnp.where(c.stopped, nan, loss), jnp.where(c.stopped, nan, smooth))
        return new, out

    steps = jnp.arange(num_steps, dtype=jnp.int32)
    if batch_fn is None:
        data = jax.tree.map(lambda b: b[:num_steps], data)
    final, (losses, smoothed) = jax.lax.scan(body, init, (steps, data))
    return losses, smoothed, final.stop_step


@functools.partial(
    jax.jit,
    static_argnames=("loss_fn", "make_tx", "batch_fn", "num_steps", "seeded", "out_sharding"),
)
def _run(
    hparams,
    params,
    data,
    diverge_factor,
    *,
    loss_fn,
    make_tx,
    batch_fn,
    num_steps,
    seeded,
    out_sharding,
):
    fn = functools.partial(
        _train_copy, loss_fn=loss_fn, make_tx=make_tx, batch_fn=batch_fn, num_steps=num_steps
    )
    fn = jax.vmap(fn, in_axes=(0, None, None, None))  # copies
    if seeded:
        fn = jax.vmap(fn, in_axes=(None, 0, None, None))  # seeds
        out = fn(hparams, params, data, diverge_factor)
    else:
        out = jax.tree.map(lambda x: x[None], fn(hparams, params, data, diverge_factor))
    if out_sharding is not None:
        out = jax.lax.with_sharding_constraint(out, out_sharding)
    return out


# ------------------------------------------------------------------ host loop


class EngineResult(NamedTuple):
    """Host (NumPy) results of :func:`train_copies`.

    Attributes:
      losses: ``[seeds, K, num_steps]`` raw losses, NaN after a copy stopped.
      smoothed: the debiased EMA of the losses, same shape and NaN pattern.
      stop_step: ``[seeds, K]`` step at which a copy diverged, ``-1`` if never.
      completed: the number of copies finished (``K`` unless interrupted).
    """

    losses: np.ndarray
    smoothed: np.ndarray
    stop_step: np.ndarray
    completed: int


def as_mesh(mesh: Any) -> Mesh | None:
    """``None``, a ``jax.sharding.Mesh``, or a sequence of devices (a 1-D mesh)."""
    if mesh is None or isinstance(mesh, Mesh):
        return mesh
    try:
        devices = list(mesh)
    except TypeError:
        raise TypeError(
            f"mesh must be a jax.sharding.Mesh, a sequence of devices or None, got {mesh!r}"
        ) from None
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(
            f"mesh must be a jax.sharding.Mesh or a non-empty list of devices, got {mesh!r}"
        )
    return Mesh(np.array(devices), ("copies",))


def check_chunk_size(chunk_size: Any) -> int | None:
    """``chunk_size`` as ``None`` or an int >= 1."""
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral):
        raise TypeError(f"chunk_size must be an int >= 1 or None, got {chunk_size!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size!r}")
    return int(chunk_size)


def _global_array(x: Any, sharding: NamedSharding) -> jax.Array:
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def train_copies(
    *,
    loss_fn: Callable[[Any, Any], jax.Array],
    make_tx: Static,
    hparams: Any,
    params: Any,
    seeded: bool,
    batches: Any,
    num_steps: int,
    diverge_factor: float,
    chunk_size: int | None = None,
    mesh: Mesh | None = None,
    progress: bool | None = None,
    description: str = "training",
) -> EngineResult:
    """Trains ``K`` copies (``K`` = leading size of every ``hparams`` leaf).

    Args:
      loss_fn: ``(params, batch) -> scalar``.
      make_tx: a :class:`Static` ``(h, step) -> GradientTransformation``.
      hparams: a pytree of host arrays with a leading copy axis ``K``.
      params: initial parameters (with a leading seed axis if ``seeded``).
      seeded: whether ``params`` has a leading seed axis to vmap over.
      batches: a pytree with a leading step axis, or a callable ``step -> batch``.
      num_steps: the number of steps.
      diverge_factor: stop a copy when its smoothed loss exceeds this x its best.
      chunk_size: copies per jitted call (``None``: all at once).
      mesh: shard the copy axis over this mesh (every axis of it).
      progress: ``True``/``False``/``None`` (auto: only on a terminal).
      description: the progress bar's label.

    Returns:
      An :class:`EngineResult`. On ``KeyboardInterrupt`` after at least one
      chunk finished, the finished chunks are returned (with a warning).
    """
    hparams = jax.tree.map(np.asarray, hparams)
    K = jax.tree.leaves(hparams)[0].shape[0]
    n_dev = 1 if mesh is None else mesh.devices.size
    chunk = K if chunk_size is None else min(chunk_size, K)
    chunk = -(-chunk // n_dev) * n_dev  # a multiple of the device count
    n_chunks = -(-K // chunk)
    pad = n_chunks * chunk - K
    if pad:  # repeat the last copy: same shapes for every chunk, no recompiles
        hparams = jax.tree.map(lambda a: np.concatenate([a, np.repeat(a[-1:], pad, 0)]), hparams)

    batch_fn = Static(batches) if callable(batches) else None
    data = None if callable(batches) else batches
    if mesh is None:
        out_sharding = None
        params = jax.tree.map(jnp.asarray, params)
        data = jax.tree.map(jnp.asarray, data)

        def put(tree):
            return jax.tree.map(jnp.asarray, tree)
    else:
        replicated = NamedSharding(mesh, PartitionSpec())
        split = NamedSharding(mesh, PartitionSpec(tuple(mesh.axis_names)))
        out_sharding = replicated
        params = jax.tree.map(lambda x: _global_array(x, replicated), params)
        data = jax.tree.map(lambda x: _global_array(x, replicated), data)

        def put(tree):
            return jax.tree.map(lambda x: _global_array(x, split), tree)

    run = functools.partial(
        _run,
        loss_fn=Static(loss_fn),
        make_tx=make_tx,
        batch_fn=batch_fn,
        num_steps=num_steps,
        seeded=seeded,
        out_sharding=out_sharding,
    )
    factor = jnp.asarray(diverge_factor, float_dtype())
    parts: list[tuple[np.ndarray, ...]] = []
    interrupted = False
    with ProgressBar(K, progress_enabled(progress), description) as bar:
        try:
            pending = None
            for c in range(n_chunks + 1):
                nxt = None
                if c < n_chunks:  # dispatch chunk c before waiting on chunk c - 1
                    h = put(jax.tree.map(lambda a: a[c * chunk : (c + 1) * chunk], hparams))
                    nxt = run(h, params, data, factor)
                if pending is not None:
                    parts.append(tuple(np.asarray(x) for x in pending))
                    bar.advance(min(chunk, K - (c - 1) * chunk))
                pending = nxt
        except KeyboardInterrupt:
            if not parts:
                raise
            interrupted = True
    losses, smoothed, stop = (np.concatenate(p, axis=1) for p in zip(*parts))
    done = min(K, len(parts) * chunk)
    if interrupted and done < K:
        warnings.warn(
            f"interrupted: returning the {done} of {K} copies that finished",
            RuntimeWarning,
            stacklevel=3,
        )
    return EngineResult(losses[:, :done], smoothed[:, :done], stop[:, :done], done)
