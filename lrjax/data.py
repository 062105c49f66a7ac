"""The embedded demo: scikit-learn's digits and a small MLP in plain JAX.

The digits set (1797 8x8 images, 10 classes) ships inside scikit-learn, so
nothing is downloaded (``pip install "lrjax[demo]"``); it is read straight from
the file scikit-learn installs, so loading it costs a few milliseconds rather
than the second it takes to import scikit-learn. The model is a ReLU MLP with a
softmax cross-entropy loss, initialised deterministically from a PRNG key (one
compiled program) or from an int seed (NumPy, nothing compiled).

Example:
  >>> import lrjax
  >>> from lrjax import data
  >>> loss_fn, params, batches = data.make_demo(num_steps=20)
  >>> result = lrjax.range_test(loss_fn, params, batches, num_lrs=4, num_steps=20,
  ...                           min_lr=1e-4, max_lr=1.0, progress=False)
"""

from __future__ import annotations

import functools
import itertools
import os
import zipfile
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import optax

Params = list[dict[str, jax.Array]]

__all__ = [
    "DEMO_HIDDEN",
    "init_mlp",
    "load_digits",
    "load_npz",
    "make_batches",
    "make_demo",
    "mlp_apply",
    "mlp_loss",
    "mlp_sizes",
]

DEMO_HIDDEN = (64,)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The scikit-learn digits: ``X`` float32 ``[1797, 64]`` in ``[0, 1]``, ``y`` int32.

    The numbers are those of ``sklearn.datasets.load_digits()``, read from the
    data file inside the installed scikit-learn without importing it (scikit-learn
    is imported only if that file is not where it is expected).

    Raises:
      ImportError: scikit-learn is missing (``pip install "lrjax[demo]"``).

    Example:
      >>> X, y = load_digits()
      >>> X.shape, y[:5].tolist()
      ((1797, 64), [0, 1, 2, 3, 4])
    """
    path = _digits_file()
    if path is not None:
        table = np.loadtxt(path, delimiter=",")  # 64 pixel columns (0..16), then the label
        return (table[:, :-1] / 16.0).astype(np.float32), table[:, -1].astype(np.int32)
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise ImportError('the digits demo needs scikit-learn: pip install "lrjax[demo]"') from None
    d = sk_load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int32)


def _digits_file() -> str | None:
    """scikit-learn's ``datasets/data/digits.csv.gz``, found without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("sklearn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "datasets", "data", "digits.csv.gz")
        if os.path.isfile(path):
            return path
    return None


def load_npz(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Tabular data from an ``.npz`` file with arrays ``X`` and ``y``.

    ``X`` (``[n, d]`` numbers) is standardised per feature; ``y`` (``[n]``
    integer class labels ``0 .. c-1``) is returned as int32.

    Raises:
      FileNotFoundError: no such file.
      ValueError: not an ``.npz``/``.npy`` archive, ``X`` or ``y`` missing, or
        wrong shapes, non-finite features or non-integer/negative labels.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        what = "is not a file" if os.path.exists(path) else "does not exist"
        raise FileNotFoundError(f"data file {path!r} {what}")
    with open(path, "rb") as f:
        is_npy = f.read(6) == b"\x93NUMPY"
    if not is_npy and not zipfile.is_zipfile(path):  # numpy would say "pickled data"
        raise ValueError(
            f"cannot read {path!r} as an .npz file: not a zip archive; "
            "save with np.savez(path, X=features, y=labels)"
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read {path!r} as an .npz file: {e}") from None
    if not hasattr(archive, "files"):
        raise ValueError(f"{path!r} is a single array, expected an .npz with arrays X and y")
    missing = [k for k in ("X", "y") if k not in archive.files]
    if missing:
        raise ValueError(
            f"{path!r} has no array {' or '.join(missing)} (found {sorted(archive.files)}); "
            "save with np.savez(path, X=features, y=labels)"
        )
    X, y = np.asarray(archive["X"]), np.asarray(archive["y"])
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X in {path!r} must be a 2-D [samples, features] array, got {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
        raise ValueError(f"X in {path!r} must hold finite numbers")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y in {path!r} must have shape ({X.shape[0]},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.number) or np.any(y != np.round(y)) or np.any(y < 0):
        raise ValueError(f"y in {path!r} must hold integer class labels >= 0")
    X = X.astype(np.float64)
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return X.astype(np.float32), y.astype(np.int32)


def init_mlp(key: jax.Array | int, sizes: Sequence[int] = (64, *DEMO_HIDDEN, 10)) -> Params:
    """MLP parameters ``[{"w": [in, out], "b": [out]}, ...]``, torch ``Linear``'s init.

    Weights and biases are uniform in ``+-1/sqrt(fan_in)``.

    Args:
      key: a JAX PRNG key (the draws run as one compiled program, which also
        works under ``jax.vmap`` and ``jax.jit``, e.g. as a range test's
        ``init_fn``), or an int seed: the same distribution drawn with NumPy's
        ``default_rng(seed)``, with no JAX program to compile (what
        :func:`make_demo` and ``lrjax find`` use). The two give different numbers;
        each is deterministic.
      sizes: the layer widths, inputs first.

    Example:
      >>> params = init_mlp(0, (4, 3, 2))
      >>> [p["w"].shape for p in params], params[0]["w"].dtype
      ([(4, 3), (3, 2)], dtype('float32'))
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must hold >= 2 positive layer widths, got {sizes}")
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return _init_mlp_numpy(int(key), sizes)
    return _init_mlp_jax(key, sizes)


def _init_mlp_numpy(seed: int, sizes: tuple[int, ...]) -> Params:
    if seed < 0:
        raise ValueError(f"key must be a PRNG key or an int seed >= 0, got {seed}")
    rng = np.random.default_rng(seed)
    dtype = jax.dtypes.canonicalize_dtype(np.float64)  # float32 unless jax_enable_x64
    params = []
    for n_in, n_out in itertools.pairwise(sizes):
        bound = 1.0 / np.sqrt(n_in)
        w = rng.uniform(-bound, bound, (n_in, n_out)).astype(dtype)
        b = rng.uniform(-bound, bound, (n_out,)).astype(dtype)
        params.append({"w": w, "b": b})
    return jax.device_put(params)  # a host-to-device copy: nothing is compiled


@functools.partial(jax.jit, static_argnums=1)
def _init_mlp_jax(key: jax.Array, sizes: tuple[int, ...]) -> Params:
    params = []
    for k, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1), itertools.pairwise(sizes)):
        kw, kb = jax.random.split(k)
        bound = 1.0 / np.sqrt(n_in)
        params.append(
            {
                "w": jax.random.uniform(kw, (n_in, n_out), minval=-bound, maxval=bound),
                "b": jax.random.uniform(kb, (n_out,), minval=-bound, maxval=bound),
            }
        )
    return params


def mlp_apply(params: Params, x: jax.Array) -> jax.Array:
    """Logits of the ReLU MLP."""
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def mlp_loss(params: Params, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """Mean softmax cross-entropy of the MLP on ``batch = (x, y)``."""
    x, y = batch
    logits = mlp_apply(params, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def make_batches(
    X: np.ndarray, y: np.ndarray, num_steps: int, batch_size: int = 128, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``num_steps`` minibatches ``([steps, B, d], [steps, B])``, reshuffled each epoch.

    ``B = min(batch_size, n)``; the order depends only on ``seed``.
    """
    if num_steps < 1 or batch_size < 1:
        raise ValueError(f"num_steps and batch_size must be >= 1, got {num_steps}, {batch_size}")
    n = X.shape[0]
    B = min(batch_size, n)
    per_epoch = n // B
    epochs = -(-num_steps // per_epoch)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n)[: per_epoch * B] for _ in range(epochs)])
    idx = order[: num_steps * B].reshape(num_steps, B)
    return X[idx], y[idx]


def mlp_sizes(X: np.ndarray, y: np.ndarray, hidden: Sequence[int] = DEMO_HIDDEN) -> tuple[int, ...]:
    """Layer widths for data ``(X, y)``: inputs, ``hidden``, classes."""
    return (X.shape[1], *hidden, int(y.max()) + 1)


def make_demo(
    num_steps: int = 100,
    batch_size: int = 128,
    hidden: Sequence[int] = DEMO_HIDDEN,
    seed: int = 0,
    data: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Callable[[Any, Any], jax.Array], Params, tuple[np.ndarray, np.ndarray]]:
    """``(loss_fn, params, batches)`` for a range test on digits (or ``data``).

    Args:
      num_steps: the number of minibatches to prepare.
      batch_size: samples per minibatch.
      hidden: hidden layer widths.
      seed: seeds the initialisation (``init_mlp(seed, ...)``, NumPy) and the
        batch order.
      data: ``(X, y)`` to use instead of digits (see :func:`load_npz`).

    Example:
      >>> loss_fn, params, (xb, yb) = make_demo(num_steps=5, batch_size=32)
      >>> xb.shape, yb.shape
      ((5, 32, 64), (5, 32))
    """
    X, y = load_digits() if data is None else data
    params = init_mlp(seed, mlp_sizes(X, y, hidden))
    return mlp_loss, params, make_batches(X, y, num_steps, batch_size, seed)
