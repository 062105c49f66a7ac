"""`lrjax.transfer`: the best rate for a run too large to sweep, from small ones.

Check the arguments, train every small size's rates x seeds side by side on
the engine (one sweep per size, the data read once), count their FLOPs and a
target run's, then hand the sweeps to :class:`TransferResult`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import optax

from lrjax import _engine
from lrjax._checks import (
    check_choice,
    check_count,
    check_key,
    check_lr_range,
    check_transformation,
    float_dtype,
)
from lrjax._range_test import ConstantRate
from lrjax._results import RangeTestResult, TransferResult, check_options, check_sizes

#: What ``along=`` accepts: the model's width, or the run's length.
ALONG = ("width", "steps")


class RateForLength(_engine.Static):
    """``make_tx`` along run lengths: ``optimizer(h, num_steps)``, each run's
    schedule built for its own length (compared by the optimizer's structure and
    the length)."""

    __slots__ = ("num_steps",)

    def __init__(self, fn: Callable[..., Any], num_steps: int):
        super().__init__(fn)
        self.num_steps = num_steps

    def __hash__(self) -> int:
        return hash((type(self), self.key, self.num_steps))

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other) and other.num_steps == self.num_steps  # type: ignore[attr-defined]

    def __call__(self, h: Any, step: Any) -> optax.GradientTransformation:
        return self.fn(h, self.num_steps)


def transfer(
    loss_fn: Callable[..., Any],
    model: Any,
    batches: Any,
    optimizer: Callable[..., optax.GradientTransformation],
    *,
    sizes: Sequence[float],
    target: float,
    along: str = "width",
    num_steps: int | None = None,
    min_lr: float = 1e-6,
    max_lr: float = 10.0,
    num_lrs: int = 16,
    seeds: int = 2,
    val_batches: Any = None,
    eval_fn: Callable[..., Any] | None = None,
    key: Any = None,
    mesh: Any = None,
    progress: bool | None = None,
    strategy: str = "auto",
    state: Any = None,
    trainable: Any = None,
    has_aux: bool = False,
    diverge_factor: float | None = 4.0,
    chunk_size: int | str | None = None,
    rule: str = "auto",
    level: float = 0.8,
) -> TransferResult:
    """The best learning rate at a size too large to sweep, from sweeps at small ones.

    Each size trains ``num_lrs`` log-spaced rates x ``seeds`` initialisations side
    by side (a :class:`RangeTestResult` each) and gets its best rate from its
    whole curve, with a bootstrap interval over seeds. The scaling rule that best
    predicts the largest small size from the others is refitted on all and
    predicts the rate at ``target``, with an interval and warnings when not to
    trust it. The method and its benchmark: ``docs/scale.md``.

    Args:
      loss_fn: as in :func:`lrjax.range_test`.
      model: ``"width"``: a callable ``(size, key=) -> model`` (any model kind;
        ``rngs=`` for NNX); ``"steps"``: the model, or a callable ``(key=) -> model``.
      batches: as in ``range_test``, read once for every size.
      optimizer: ``lr -> transformation``; ``"steps"``: ``(lr, num_steps) -> ...``.
      sizes: at least 3 distinct small widths or run lengths.
      target: the width or run length to predict the rate at.
      along: ``"width"`` or ``"steps"``.
      num_steps: steps per run along ``"width"`` (default: the batches' length).
      min_lr: the smallest rate, > 0.
      max_lr: the largest rate.
      num_lrs: rates per size (at least 3).
      seeds: initialisations per rate and size.
      val_batches: evaluation batches (runs are scored on them).
      eval_fn: the evaluation score (default: the loss).
      key: the PRNG key of the initialisations, the streams and the bootstrap.
      mesh: a ``jax.sharding.Mesh`` or devices to shard the copies over.
      progress: as in ``range_test``.
      strategy: ``"auto"``, ``"scan"``, ``"blocks"`` or ``"sequential"``.
      state: as in ``range_test``; along ``"width"`` a callable ``size -> state``.
      trainable: the arrays to train, an NNX or Equinox filter.
      has_aux: ``loss_fn`` returns ``(loss, aux)``.
      diverge_factor: freeze a copy whose smoothed loss exceeds this x its best.
      chunk_size: copies per jitted call (``"auto"``: what fits in memory).
      rule: ``"auto"``, ``"fit"``, ``"theory"``, ``"shrunk"`` or ``"reuse"``.
      level: the intervals' coverage.

    Returns:
      A :class:`TransferResult` (``.rate``, ``.interval``, ``.rule``, ``.plot()``).

    Raises:
      ValueError: fewer than 3 sizes, repeated or non-positive sizes, sizes that
        do not change the model's shapes, a bad rate range, ... (one line each).
      TypeError: a ``model`` or ``optimizer`` of the wrong form.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> X = jax.random.normal(jax.random.PRNGKey(0), (60, 16, 4))
      >>> batches = (X, jnp.tanh(X).sum(-1))
      >>> def mlp(width, key):
      ...     k1, k2 = jax.random.split(key)
      ...     return {"w": jax.random.normal(k1, (4, width)) / 2,
      ...             "v": jax.random.normal(k2, (width,)) / jnp.sqrt(width)}
      >>> loss = lambda p, b: jnp.mean((jnp.tanh(b[0] @ p["w"]) @ p["v"] - b[1]) ** 2)
      >>> res = lrjax.transfer(loss, mlp, batches, optax.sgd, sizes=[8, 16, 32], target=128,
      ...                      num_steps=60, min_lr=1e-3, max_lr=10.0, num_lrs=12,
      ...                      progress=False)
      >>> res.optima.shape, res.rule in ("fit", "theory", "shrunk", "reuse")
      ((3,), True)
      >>> bool(res.interval[0] <= res.rate <= res.interval[1])
      True
    """
    along = check_choice("along", along, ALONG)
    sizes = _check_sizes(sizes, along)
    check_options(target, along, rule, level, 2000, 0, None, None)
    lo, hi = check_lr_range(min_lr, max_lr)
    num_lrs = check_count("num_lrs", num_lrs, minimum=3)
    seeds = check_count("seeds", seeds, minimum=1)
    options = _engine.check_run_options(
        diverge_factor=diverge_factor, chunk_size=chunk_size, mesh=mesh, progress=progress,
        strategy=strategy,
    )  # fmt: skip
    run_key, init_keys, bootstrap_seed = _keys(check_key(key), seeds)
    build = _model_builder(model, state, along, seeds, init_keys)
    make_tx = _optimizer_builder(optimizer, along, sizes)
    data = _engine.prepare_data(batches, val_batches)
    lengths = _run_lengths(num_steps, along, sizes, data[0])
    models = {size: build(size) for size in sizes} if along == "width" else {None: build(None)}
    if along == "width":
        _check_shapes_change(loss_fn, models, trainable)
    common = dict(eval_fn=eval_fn, has_aux=has_aux, key=run_key, trainable=trainable, data=data)
    lrs = np.geomspace(lo, hi, num_lrs)
    sweeps, flops = [], 0.0
    for i, (size, steps) in enumerate(zip(sizes, lengths)):
        seeded = models[size if along == "width" else None]
        prepared = _engine.prepare(loss_fn, None, None, models=seeded, **common)
        out = _engine.run(
            prepared, make_tx(size), lrs.astype(float_dtype()), num_steps=steps, options=options,
            description=f"transfer: {along} {size:g} ({i + 1}/{len(sizes)}), {num_lrs} rates x "
            f"{seeds} seeds x {steps} steps",
        )  # fmt: skip
        sweeps.append(RangeTestResult.from_engine(lrs, out, options.diverge_factor))
        flops += num_lrs * seeds * steps * _engine.step_flops(prepared)
    target_flops = _target_flops(loss_fn, build, along, target, lengths, common)
    return TransferResult.from_sweeps(
        sweeps, [float(s) for s in sizes], target=target, along=along, flops=flops,
        target_flops=target_flops, rule=rule, level=level, bootstrap_seed=bootstrap_seed,
        stacklevel=2,
    )  # fmt: skip


def _check_sizes(sizes: Any, along: str) -> list:
    """``sizes`` sorted: at least 3, distinct, positive; run lengths whole numbers."""
    checked = check_sizes(sizes)
    if along == "steps":
        return sorted(check_count(f"sizes[{i}]", s, minimum=1) for i, s in enumerate(sizes))
    return sorted(int(s) if float(s).is_integer() else float(s) for s in checked)


def _keys(raw_key: np.ndarray, seeds: int) -> tuple[np.ndarray, list[Any], int]:
    """``(the copies' key, one initialisation key per seed, the bootstrap's seed)``:
    every size draws seed ``s`` from the same key (their curves compare)."""
    base = jax.random.wrap_key_data(raw_key)
    run, init = jax.random.split(base)
    init_keys = list(jax.random.split(init, seeds))
    return np.asarray(jax.random.key_data(run)), init_keys, int(raw_key[1])


def _model_builder(model: Any, state: Any, along: str, seeds: int, init_keys: list) -> Callable:
    """``size -> [(model, state) per seed]`` (``size`` ignored along run lengths)."""
    is_factory = callable(model) and not _engine.is_model_object(model)
    if along == "width" and not is_factory:
        raise TypeError(
            f"model must be a callable size -> model along='width' (e.g. lambda width, key: "
            f"MLP(width, key)), got {type(model).__name__}"
        )
    named = _engine.random_args(model) if is_factory else ()
    if seeds > 1 and not named:
        raise ValueError(
            f"seeds={seeds} draws one initialisation per seed: model must be a callable taking "
            "key= (or rngs=) to draw it (or pass seeds=1)"
        )
    if along == "width" and state is not None and not callable(state):
        raise TypeError("state must be a callable size -> state along='width' (or None)")

    def call(fn, size, key):
        kw = {}
        if "key" in _engine.random_args(fn):
            kw["key"] = key
        if "rngs" in _engine.random_args(fn):
            from flax import nnx

            kw["rngs"] = nnx.Rngs(key)
        return fn(size, **kw) if along == "width" else fn(**kw)

    def build(size, n=seeds):
        if not is_factory:
            return [(model, state)]
        models = [call(model, size, k) for k in init_keys[:n]]
        if along == "width" and state is not None:
            return [(m, call(state, size, k)) for m, k in zip(models, init_keys)]
        return [(m, state) for m in models]

    return build


def _optimizer_builder(optimizer: Any, along: str, sizes: list) -> Callable[[Any], Any]:
    """``size -> make_tx``: a constant rate along width; along run lengths the
    optimizer built for each run's own length (checked on the first size)."""
    if not callable(optimizer) or hasattr(optimizer, "update"):
        raise TypeError(f"optimizer must be a callable building an Optax transformation, got "
                        f"{optimizer!r}")  # fmt: skip
    if along == "width":
        check_transformation(optimizer(1e-3), "optimizer(learning_rate)")
        return lambda size: ConstantRate(optimizer)
    if not _takes_a_length(optimizer):
        raise TypeError(
            "optimizer must take (learning_rate, num_steps) along='steps' and build the run's "
            f"schedule for its length, e.g. lambda lr, n: optax.adam(lrjax.cosine(lr, n)); got "
            f"{getattr(optimizer, '__name__', type(optimizer).__name__)}"
        )
    check_transformation(optimizer(1e-3, int(sizes[0])), "optimizer(learning_rate, num_steps)")
    return lambda size: RateForLength(optimizer, int(size))


def _takes_a_length(optimizer: Callable[..., Any]) -> bool:
    """Whether ``optimizer`` requires a second argument (the run's length) or names
    one ``num_steps``: ``optax.adam`` takes a second one too, ``b1``, with a default."""
    try:
        params = list(inspect.signature(optimizer).parameters.values())
    except (TypeError, ValueError):  # no signature to read: let the call decide
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in params if p.kind in positional and p.default is p.empty]
    variadic = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    return len(required) >= 2 or variadic or any(p.name == "num_steps" for p in params[1:])


def _run_lengths(num_steps: Any, along: str, sizes: list, source: Any) -> list[int]:
    """Each size's training steps; the batches read once and kept for every run."""
    if along == "steps":
        if num_steps is not None:
            raise ValueError(
                f"num_steps={num_steps!r}: along='steps' the sizes are the run lengths; "
                "leave num_steps=None"
            )
        lengths = [int(s) for s in sizes]
    else:
        if num_steps is None:
            if source.length is None:
                raise ValueError("num_steps is required when batches is a callable or an iterable")
            num_steps = source.length
        lengths = [check_count("num_steps", num_steps, minimum=1)] * len(sizes)
    source.check_steps(max(lengths))
    source.prefetch(max(lengths))  # a stream's batches, kept: every run reads them again
    return lengths


def _check_shapes_change(loss_fn: Any, models: dict, trainable: Any) -> None:
    """Raises ValueError naming ``sizes`` when two widths build equally shaped models."""
    seen: dict[Any, Any] = {}
    for size, seeded in models.items():
        m, s = seeded[0]
        params = _engine.make_model(loss_fn, m, state=s, trainable=trainable).params
        shapes = str(jax.tree.map(np.shape, params))
        if shapes in seen:
            raise ValueError(
                f"sizes: model({seen[shapes]:g}) and model({size:g}) have the same parameter "
                "shapes; the sizes must be widths the model callable builds"
            )
        seen[shapes] = size


def _target_flops(loss_fn, build, along, target, lengths, common) -> float:
    """One run's FLOPs at the target: the target model built once (along width),
    its step's count times the run's steps."""
    size = target if along == "width" else None
    prepared = _engine.prepare(loss_fn, None, None, models=build(size, 1), **common)
    steps = target if along == "steps" else lengths[0]
    return float(steps) * _engine.step_flops(prepared)
