"""muP for Optax: each parameter's rate multiplier from how its shape grows with width.

The rules are those of Yang et al. 2022 ("Tensor Programs V", Table 3) as the
reference package ``mup`` (microsoft/mup, ``MuAdam`` / ``MuSGD``) applies them:
a parameter's axes that differ between the base and the delta shapes (or the
base and the actual shapes, without a delta) grow with width; how many grow
decides its kind, and its kind and the optimizer its multiplier.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrjax._checks import check_choice
from lrjax.transforms._layers import path_name

#: The optimizer families muP has rules for: ``"adam"`` for optimizers that
#: normalise the gradient entrywise (Adam, AdamW, RMSprop, Adagrad, Lion, ...),
#: ``"sgd"`` for those whose step is proportional to it (SGD, momentum, Nesterov).
OPTIMIZERS = ("adam", "sgd")
#: ``"in_out"``: kernels are ``[..., fan_in, fan_out]`` (Flax, Haiku, Keras);
#: ``"out_in"``: weights are ``[fan_out, fan_in, ...]`` (Equinox, PyTorch);
#: ``"auto"``: ``"out_in"`` for Equinox modules, ``"in_out"`` for everything else.
LAYOUTS = ("auto", "in_out", "out_in")
_SHOWN = 3  # paths listed in a message about mismatched trees


@dataclasses.dataclass(frozen=True)
class MupShape:
    """How one parameter grows with width, relative to its base shape.

    Attributes:
      kind: ``"scalar"`` (no axis grows; muP leaves it alone), ``"vector"``
        (one axis grows: input weights and embeddings, biases, norm gains, and
        output (readout) weights) or ``"matrix"`` (two grow: hidden weights).
      shape: the parameter's shape.
      base_shape: its shape in the base model.
      width_axes: the axes that grow with width: where the delta shape differs
        from the base shape (or, without a delta, where the parameter's does).
      fan_in_mult: the parameter's fan-in over the base's (``1.0`` when its
        fan-in does not grow).
      fan_out_mult: the parameter's fan-out over the base's (a bias's or a
        gain's only axis is its fan-out).
    """

    kind: str
    shape: tuple[int, ...]
    base_shape: tuple[int, ...]
    width_axes: tuple[int, ...]
    fan_in_mult: float
    fan_out_mult: float

    @property
    def width_mult(self) -> float:
        """The growing axis's multiplier (vector-like), the fan-in's (matrix-like), or 1."""
        if self.kind == "vector":
            return self.fan_in_mult * self.fan_out_mult  # one of the two is 1.0
        if self.kind == "matrix":
            return self.fan_in_mult
        return 1.0

    def lr_multiplier(self, optimizer: str) -> float:
        """The factor muP puts on this parameter's learning rate.

        Args:
          optimizer: ``"adam"`` (Adam-type: a hidden weight's rate is divided by
            its fan-in multiplier, every other rate kept) or ``"sgd"`` (a
            vector-like parameter's rate is multiplied by its width multiplier,
            a hidden weight's by its fan-out over fan-in multiplier).

        Returns:
          The multiplier, a Python float (``1.0`` at the base shapes).

        Raises:
          ValueError: an ``optimizer`` other than ``"adam"`` or ``"sgd"``.
        """
        check_choice("optimizer", optimizer, OPTIMIZERS)
        if self.kind == "matrix":
            if optimizer == "adam":
                return 1.0 / self.fan_in_mult
            return 1.0 / (self.fan_in_mult / self.fan_out_mult)
        if self.kind == "vector" and optimizer == "sgd":
            return self.width_mult
        return 1.0


def _shape_of(leaf: Any) -> tuple[int, ...] | None:
    """A leaf's shape; ``None`` for what is not an array (functions, strings)."""
    shape = getattr(leaf, "shape", None)
    if shape is not None:
        try:
            return tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            return None
    if isinstance(leaf, (int, float, complex, np.number)) and not isinstance(leaf, bool):
        return ()
    return None


def _shapes(tree: Any, name: str) -> dict[str, tuple[int, ...]]:
    """``{path: shape}`` of every array-like leaf, in tree order."""
    out: dict[str, tuple[int, ...]] = {}
    for keypath, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        shape = _shape_of(leaf)
        if shape is None:
            continue
        path = path_name(keypath)
        if path in out:
            raise ValueError(f"{name}: two leaves share the path {path!r}")
        out[path] = shape
    return out


def _listed(paths: list[str]) -> str:
    more = f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
    return ", ".join(repr(p) for p in paths[:_SHOWN]) + more


def _check_same_leaves(
    name: str, shapes: dict[str, tuple[int, ...]], other: str, ref: dict[str, tuple[int, ...]]
) -> None:
    """``shapes`` (argument ``name``) has exactly ``ref``'s paths, with the same ranks."""
    missing = [p for p in ref if p not in shapes]
    extra = [p for p in shapes if p not in ref]
    if missing or extra:
        parts = ([f"missing {_listed(missing)}"] if missing else []) + (
            [f"extra {_listed(extra)}"] if extra else []
        )
        raise ValueError(
            f"{name}: its leaves are not the {other}' ({'; '.join(parts)}); "
            "pass the same kind of tree, with arrays or jax.ShapeDtypeStruct leaves"
        )
    for path, shape in ref.items():
        if len(shapes[path]) != len(shape):
            raise ValueError(
                f"{name}[{path!r}] has shape {shapes[path]}, the {other}' {shape}: ranks differ"
            )


def _resolve_layout(layout: str, *trees: Any) -> str:
    check_choice("layout", layout, LAYOUTS)
    if layout != "auto":
        return layout
    eqx = sys.modules.get("equinox")  # an Equinox module exists only if equinox is imported
    if eqx is not None:
        for tree in trees:
            nodes = jax.tree_util.tree_leaves(tree, is_leaf=lambda x: isinstance(x, eqx.Module))
            if any(isinstance(n, eqx.Module) for n in nodes):
                return "out_in"
    return "in_out"


def _leaf_shape(
    path: str, shape: tuple[int, ...], base: tuple[int, ...], delta: tuple[int, ...] | None,
    layout: str,
) -> MupShape:  # fmt: skip
    ndim = len(shape)
    if delta is None:
        axes = tuple(i for i in range(ndim) if base[i] != shape[i])
    else:
        axes = tuple(i for i in range(ndim) if base[i] != delta[i])
    if len(axes) > 2:
        raise ValueError(
            f"base_shapes[{path!r}]: {len(axes)} axes {axes} grow with width (shape {shape}, "
            f"base {base}); muP has rules for at most 2"
        )
    for i in axes:
        if base[i] <= 0 or shape[i] <= 0:
            raise ValueError(
                f"base_shapes[{path!r}]: axis {i} grows with width but has size 0 "
                f"(shape {shape}, base {base})"
            )
    mult = {i: shape[i] / base[i] for i in axes}
    fan_in, fan_out = 1.0, 1.0
    if len(axes) == 2:
        first, second = (mult[i] for i in axes)
        # The earlier growing axis is fan-in in [..., in, out], fan-out in [out, in, ...].
        fan_in, fan_out = (first, second) if layout == "in_out" else (second, first)
        kind = "matrix"
    elif len(axes) == 1:
        (axis,) = axes
        kind = "vector"
        reads_as_fan_out = ndim == 1 or axis == (ndim - 1 if layout == "in_out" else 0)
        if reads_as_fan_out:
            fan_out = mult[axis]
        else:
            fan_in = mult[axis]
    else:
        kind = "scalar"
    return MupShape(kind, shape, base, axes, fan_in, fan_out)


def _classify(params: Any, base_shapes: Any, delta_shapes: Any, layout: str) -> dict[str, MupShape]:
    layout = _resolve_layout(layout, params, base_shapes)
    shapes = _shapes(params, "params")
    base = _shapes(base_shapes, "base_shapes")
    _check_same_leaves("base_shapes", base, "params", shapes)
    delta = None
    if delta_shapes is not None:
        delta = _shapes(delta_shapes, "delta_shapes")
        _check_same_leaves("delta_shapes", delta, "base_shapes", base)
    return {
        path: _leaf_shape(path, shape, base[path], None if delta is None else delta[path], layout)
        for path, shape in shapes.items()
    }


def mup_shapes(
    params: Any, base_shapes: Any, delta_shapes: Any = None, *, layout: str = "auto"
) -> dict[str, MupShape]:
    """Classifies every parameter by how its shape grows with width, as muP needs.

    Each leaf of ``params`` is compared with the leaf at the same path of
    ``base_shapes``: the axes that grow with width are those where
    ``delta_shapes`` differs from ``base_shapes`` (as ``mup.set_base_shapes(model,
    base, delta=delta)``), or without a delta those where ``params`` does. None
    growing: scalar-like; one: vector-like (input weights, embeddings, biases,
    gains, output weights); two: matrix-like (hidden weights). A parameter
    narrower than its base is fine (multipliers below 1), as in ``mup``.

    Fan-in and fan-out are read off the layout. Flax, Haiku and Keras store a
    kernel as ``[..., in, out]`` (``Conv``: ``[h, w, in, out]``), Equinox and
    PyTorch as ``[out, in, ...]``; ``layout="auto"`` takes Equinox modules as
    the second and every other tree (``nnx.State``, Linen and plain dicts) as
    the first. Of a matrix-like leaf's two growing axes, the earlier is the
    fan-in in ``"in_out"`` and the fan-out in ``"out_in"`` (so a Flax
    attention kernel ``[d_model, heads, head_dim]`` whose width and heads grow
    reads right too). The layout changes no vector-like multiplier and no
    hidden one whose fan-in and fan-out grow alike (square layers, a fixed
    MLP ratio); it matters when they grow apart.

    Args:
      params: the model's parameters at its width: any pytree of arrays or
        ``jax.ShapeDtypeStruct`` (``nnx.state(model, nnx.Param)``,
        ``eqx.filter(model, eqx.is_inexact_array)``, a Linen ``params`` dict).
      base_shapes: the same tree at the base width, whose rates muP keeps;
        shapes are enough: ``jax.eval_shape(lambda: make(width=base))`` or
        ``nnx.state(nnx.eval_shape(...), nnx.Param)`` allocate nothing.
        Leaves that are not arrays (functions, strings) are skipped.
      delta_shapes: optional, the same tree at another width, only to tell
        which axes grow; without it, the axes where ``params`` differs from
        ``base_shapes`` grow.
      layout: ``"auto"``, ``"in_out"`` or ``"out_in"`` (above).

    Returns:
      ``{path: MupShape}`` in tree order, keyed by the ``/``-joined path of
      :func:`~lrjax.transforms.parameter_paths`.

    Raises:
      ValueError: trees whose leaves differ (naming the paths), a leaf whose
        rank differs, more than two growing axes, a growing axis of size 0, an
        unknown layout.

    Example:
      >>> import jax, jax.numpy as jnp, lrjax
      >>> def mlp(width):  # Flax-style kernels: [fan_in, fan_out]
      ...     return {"input": jnp.ones((3, width)), "bias": jnp.ones(width),
      ...             "hidden": jnp.ones((width, width)), "readout": jnp.ones((width, 2))}
      >>> base = jax.eval_shape(lambda: mlp(64))  # shapes only
      >>> for path, s in lrjax.mup_shapes(mlp(256), base).items():
      ...     print(path, s.kind, s.fan_in_mult, s.fan_out_mult,
      ...           s.lr_multiplier("adam"), s.lr_multiplier("sgd"))
      bias vector 1.0 4.0 1.0 4.0
      hidden matrix 4.0 4.0 0.25 1.0
      input vector 1.0 4.0 1.0 4.0
      readout vector 4.0 1.0 1.0 4.0
    """
    return _classify(params, base_shapes, delta_shapes, layout)


def scale_by_mup(
    base_shapes: Any, optimizer: str, delta_shapes: Any = None, *, layout: str = "auto"
) -> optax.GradientTransformation:
    """Scales each parameter's update by its muP learning-rate multiplier.

    Chain it after the optimizer: ``optax.chain(optax.adam(lr),
    lrjax.scale_by_mup(base, "adam"))``. Every leaf's update is multiplied by
    :meth:`MupShape.lr_multiplier` of :func:`mup_shapes` (``params`` against
    ``base_shapes``), the per-parameter rates of ``mup.MuAdam`` /
    ``mup.MuSGD``:

    - scalar-like (no axis grows): 1 with either optimizer;
    - vector-like (input weights, biases, output weights): 1 with ``"adam"``,
      the width multiplier with ``"sgd"``;
    - matrix-like (hidden weights): 1 / fan-in multiplier with ``"adam"``,
      fan-out multiplier / fan-in multiplier with ``"sgd"``.

    At the base shapes every multiplier is 1 and the transform is the
    identity, so a rate tuned on the base model is the rate at any width (with
    the model-side changes muP also needs: a readout multiplier of 1 / width
    multiplier, see ``docs/scale.md``).

    Scaling the update scales the rate: Optax's optimizers end with
    ``scale_by_learning_rate``, a multiplication applied after every statistic
    (Adam's moments, SGD's momentum trace) is computed from the raw gradients,
    so multiplying a leaf's update by ``m`` afterwards is that leaf running at
    rate ``m * lr``, schedule included; ``optax.adam``'s ``eps`` and
    ``optax.sgd``'s momentum see no difference. ``optax.adamw`` adds
    ``weight_decay * params`` before its rate, so the decay is scaled with the
    leaf's rate (PyTorch ``AdamW`` with per-group rates and one
    ``weight_decay``). ``mup.MuAdamW`` instead keeps each leaf's ``lr *
    weight_decay`` as at the base; in Optax that is the decay added after
    this transform: ``optax.chain(optax.scale_by_adam(), scale_by_mup(base,
    "adam"), optax.add_decayed_weights(wd), optax.scale_by_learning_rate(lr))``.

    Args:
      base_shapes: the parameter tree at the base width (arrays or
        ``jax.ShapeDtypeStruct``; see :func:`mup_shapes`).
      optimizer: ``"adam"`` for Adam-type optimizers (Adam, AdamW, RMSprop,
        Adagrad, Lion: entrywise-normalised steps) or ``"sgd"`` (SGD, momentum,
        Nesterov: steps proportional to the gradient).
      delta_shapes: optional, the tree at another width, to tell which axes
        grow (``mup.set_base_shapes``'s ``delta``).
      layout: ``"auto"``, ``"in_out"`` (Flax, Haiku, Keras) or ``"out_in"``
        (Equinox, PyTorch); see :func:`mup_shapes`.

    Returns:
      An ``optax.GradientTransformation`` with an ``optax.EmptyState``. The
      multipliers come from the shapes alone, so it works under ``jax.jit``,
      ``jax.vmap`` (over stacked copies: each copy has the unstacked shapes)
      and ``optax.inject_hyperparams``.

    Raises:
      ValueError: an unknown ``optimizer`` or ``layout``, or ``delta_shapes``
        that do not match ``base_shapes``, at construction; at ``init`` and
        ``update``, parameters whose leaves or ranks differ from
        ``base_shapes``' (naming the leaf), or that grow on more than two axes.

    Example:
      >>> import jax, jax.numpy as jnp, optax, lrjax
      >>> def mlp(width):  # Flax-style kernels: [fan_in, fan_out]
      ...     return {"input": jnp.ones((3, width)), "hidden": jnp.ones((width, width)),
      ...             "readout": jnp.ones((width, 2))}
      >>> base = jax.eval_shape(lambda: mlp(64))
      >>> tx = optax.chain(optax.adam(1e-3), lrjax.scale_by_mup(base, "adam"))
      >>> params = mlp(256)
      >>> updates, _ = tx.update(params, tx.init(params), params)
      >>> {k: round(float(jnp.abs(u).max()), 6) for k, u in updates.items()}
      {'hidden': 0.00025, 'input': 0.001, 'readout': 0.001}
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("layout", layout, LAYOUTS)
    if delta_shapes is not None:
        base = _shapes(base_shapes, "base_shapes")
        _check_same_leaves(
            "delta_shapes", _shapes(delta_shapes, "delta_shapes"), "base_shapes", base
        )

    def multipliers(tree: Any) -> dict[str, float]:
        shapes = _classify(tree, base_shapes, delta_shapes, layout)
        return {path: s.lr_multiplier(optimizer) for path, s in shapes.items()}

    def init_fn(params: Any) -> optax.EmptyState:
        multipliers(params)  # bad shapes fail here, before training
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        mults = multipliers(updates)

        def scale(keypath, u):
            if _shape_of(u) is None:
                return u
            m = mults[path_name(keypath)]
            return u if m == 1.0 else u * jnp.asarray(m, dtype=u.dtype)

        return jax.tree_util.tree_map_with_path(scale, updates), state

    return optax.GradientTransformation(init_fn, update_fn)
