"""Input preparation shared by every front: training batches and evaluation batches.

``batches`` comes in three kinds:

- **stacked**: a pytree of arrays whose leaves share a leading step axis (a tuple
  ``(X, y)``, a dict, one array);
- **callable**: ``step -> batch``, traced inside the compiled scan;
- **stream**: any other iterable of batch pytrees (a ``list``, a generator, a
  data loader yielding NumPy): the first ``num_steps`` batches are read in
  blocks and sent to the devices block by block.

A ``list`` is always a list of batches; pass a ``tuple`` for stacked arrays.

Every batch, the first included, goes through one conversion on the host
(:func:`host_array`) before anything compares it: torch or TensorFlow tensors,
anything with ``__array__`` or ``__dlpack__`` and Python numbers become NumPy
arrays (torch and TensorFlow are never imported for it), in the dtype JAX would
give them (``jnp.asarray``'s rule: int64 -> int32 and float64 -> float32 while
JAX's x64 mode is off; uint8 images, bool masks and bfloat16 as they are).
Batches of a stream must then all have the structure, shapes and dtypes of the
first; the error for one that does not names the step, the leaf and both sides.

A stream that runs out before the run ends is read again from its start when
it can be (an iterable that is not itself an iterator: a list, a torch
``DataLoader``, a ``tf.data`` dataset, a grain loader), as a training loop's
epochs do; :attr:`BatchSource.passes` counts the passes. A one-shot iterator
(a generator, ``iter(...)``) that ends is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lrjax._engine._static import Static

#: Steps per block when streaming without ``eval_every`` (bounds device memory).
STREAM_BLOCK = 32


def _leaf_name(name: str, path: Any) -> str:
    return f"{name}{jax.tree_util.keystr(path)}"


def is_stream(batches: Any) -> bool:
    """A list, generator, iterator or other iterable that is not a stacked pytree."""
    if isinstance(batches, list):
        return True
    if callable(batches) or isinstance(batches, (tuple, Mapping, np.ndarray, jax.Array)):
        return False
    if isinstance(batches, (str, bytes)):
        return False
    return isinstance(batches, (Iterator, Iterable))


def stacked_length(batches: Any, name: str = "batches") -> int:
    """The leading (step) axis shared by every leaf of a stacked pytree."""
    leaves = jax.tree_util.tree_leaves_with_path(batches)
    if not leaves:
        raise ValueError(
            f"{name} must be a pytree of arrays with a leading step axis, an iterable of "
            f"batches, or a callable step -> batch; got {type(batches).__name__} with no arrays"
        )
    sizes: dict[str, int] = {}
    for path, leaf in leaves:
        shape = np.shape(leaf)
        if len(shape) == 0:
            raise ValueError(
                f"{_leaf_name(name, path)} is a scalar; every leaf of {name} needs a leading "
                "step axis (or pass a list of batches)"
            )
        sizes[jax.tree_util.keystr(path) or "<root>"] = shape[0]
    if len(set(sizes.values())) > 1:
        raise ValueError(
            f"{name} have inconsistent leading (step) axes: {sizes}; every leaf must have "
            "the same number of steps"
        )
    return next(iter(sizes.values()))


def _to_numpy(x: Any) -> Any:
    if isinstance(x, (np.ndarray, np.generic, jax.Array)):
        return x
    package = type(x).__module__.partition(".")[0]
    if package == "torch" and hasattr(x, "detach"):
        x = x.detach().cpu()
        try:
            return x.numpy()
        except TypeError:  # bfloat16 and other dtypes NumPy lacks: through DLPack
            return np.asarray(jax.dlpack.from_dlpack(x.contiguous()))
    if package == "tensorflow" and hasattr(x, "numpy"):
        return x.numpy()
    if isinstance(x, (bool, int, float, complex)) or hasattr(x, "__array__"):
        return np.asarray(x)
    if hasattr(x, "__dlpack__"):
        return np.asarray(jax.dlpack.from_dlpack(x))
    raise _NotAnArrayError


class _NotAnArrayError(TypeError):
    """A leaf of a type :func:`host_array` does not know how to convert."""


def host_array(x: Any, where: str) -> Any:
    """``x`` as a NumPy array in the dtype JAX gives it (JAX arrays kept as they
    are), converted on the host: int64 -> int32 and float64 -> float32 unless
    JAX's x64 mode is on, as ``jnp.asarray`` converts.

    Raises:
      TypeError: one line naming ``where`` (the batch and the leaf) when ``x`` is
        not an array JAX can take (a string, an object, an unknown type).
    """
    try:
        arr = _to_numpy(x)
        dtype = jax.dtypes.canonicalize_dtype(jnp.result_type(arr))
    except Exception as e:
        detail = (str(e).strip().splitlines() or [""])[0][:120]
        why = "" if isinstance(e, _NotAnArrayError) or not detail else f" ({detail})"
        raise TypeError(
            f"{where} is a {type(x).__name__}, not an array JAX can take{why}; yield NumPy "
            "arrays, torch/TensorFlow tensors or numbers"
        ) from None
    if isinstance(arr, jax.Array) or arr.dtype == dtype:
        return arr
    return np.asarray(arr).astype(dtype)  # np.asarray: a memmap becomes a plain array


def _host_leaves(batch: Any, where: str) -> tuple[Any, list[Any]]:
    """The batch's tree structure and its leaves as host arrays (see :func:`host_array`)."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(batch)
    out = [host_array(x, f"{where}: leaf {jax.tree_util.keystr(p) or '<root>'}") for p, x in leaves]
    return treedef, out


def host_tree(tree: Any, where: str) -> Any:
    """``tree`` with every leaf a host array (see :func:`host_array`)."""
    treedef, leaves = _host_leaves(tree, where)
    return jax.tree.unflatten(treedef, leaves)


class _Stream:
    """Reads a stream batch by batch, converting each (:func:`host_array`) and
    checking it against the first; a re-iterable source is read again from its
    start when it runs out (epochs)."""

    def __init__(self, batches: Iterable[Any], name: str, epochs: bool = True):
        self.name = name
        self.source = batches
        # An iterator is its own iterable: read once. Anything else (a list, a
        # DataLoader, a tf.data dataset) gives a fresh iterator per pass.
        self.reiterable = epochs and not isinstance(batches, Iterator)
        self.it = iter(batches)
        self.count = 0  # batches taken, over every pass
        self.passes = 1  # passes begun over the source
        self.in_pass = 0  # batches taken in the current pass
        try:
            first = next(self.it)
        except StopIteration:
            raise ValueError(f"{name} is empty: it yielded no batch") from None
        self.treedef, leaves = _host_leaves(first, f"{name} at step 0")
        if not leaves:
            raise ValueError(f"{name}: the first batch has no arrays ({type(first).__name__})")
        self.specs = [(np.shape(x), np.dtype(x.dtype)) for x in leaves]
        self.example = jax.tree.unflatten(
            self.treedef, [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in self.specs]
        )
        self._first: list[Any] | None = leaves  # converted once, handed out by take()

    def _next(self) -> Any:
        """The next raw batch, starting a new pass over a re-iterable source when
        the current one ends; raises StopIteration when a one-shot source ends."""
        try:
            batch = next(self.it)
        except StopIteration:
            if not self.reiterable:
                raise
            self.it = iter(self.source)
            self.passes += 1
            self.in_pass = 0
            try:
                batch = next(self.it)
            except StopIteration:
                raise ValueError(
                    f"{self.name} yielded no batch when read again for pass {self.passes}; a "
                    "re-iterable source must give its batches each time it is iterated"
                ) from None
        return batch

    def take(self, n: int) -> list[list[np.ndarray]]:
        """The next ``n`` batches as lists of leaves (fewer when a one-shot stream ends)."""
        out = []
        for _ in range(n):
            if self._first is not None:
                leaves, self._first = self._first, None
            else:
                try:
                    batch = self._next()
                except StopIteration:
                    break
                leaves = self.check(batch)
            out.append(leaves)
            self.count += 1
            self.in_pass += 1
        return out

    def where(self) -> str:
        """The step being read, for messages (with the pass once it is not the first)."""
        if self.passes == 1:
            return f"{self.name} at step {self.count}"
        return f"{self.name} at step {self.count} (batch {self.in_pass} of pass {self.passes})"

    def check(self, batch: Any) -> list[np.ndarray]:
        where = self.where()
        if jax.tree.structure(batch) != self.treedef:
            raise ValueError(
                f"{where} has another structure than the first batch "
                f"({jax.tree.structure(batch)} vs {self.treedef}); yield batches of one form"
            )
        leaves = jax.tree_util.tree_leaves_with_path(batch)
        out = []
        for (path, leaf), (shape, dtype) in zip(leaves, self.specs):
            name = jax.tree_util.keystr(path) or "<root>"
            arr = host_array(leaf, f"{where}: leaf {name}")
            if np.shape(arr) != shape or arr.dtype != dtype:
                raise ValueError(
                    f"{where}: leaf {name} has {arr.dtype}{list(np.shape(arr))}, the first batch "
                    f"had {dtype}{list(shape)}; batches must have equal shapes and dtypes (drop "
                    "a last partial batch, e.g. drop_last=True)"
                )
            out.append(arr)
        return out


class BatchSource:
    """Training batches of one kind, cut into blocks for the compiled scan.

    Attributes:
      kind: ``"stacked"``, ``"callable"`` or ``"stream"``.
      example: the shape/dtype structure of one batch.
      fn: the callable ``step -> batch`` (kind ``"callable"``).
    """

    def __init__(self, batches: Any, name: str = "batches"):
        self.name = name
        self.fn: Callable[[Any], Any] | None = None
        self._stream: _Stream | None = None
        self._cache: list[list[np.ndarray]] | None = None
        if callable(batches) and not is_stream(batches):
            self.kind = "callable"
            self.fn = batches
            self.length = None
            self.example = jax.eval_shape(batches, jax.ShapeDtypeStruct((), jnp.int32))
        elif is_stream(batches):
            self.kind = "stream"
            self._stream = _Stream(batches, name)
            self.length = None
            self.example = self._stream.example
        else:
            self.kind = "stacked"
            batches = host_tree(batches, name)
            self.length = stacked_length(batches, name)
            self.data = batches
            self.example = jax.tree.map(
                lambda x: jax.ShapeDtypeStruct(np.shape(x)[1:], jnp.result_type(x)), batches
            )

    @property
    def streamed(self) -> bool:
        """The batches are read from an iterable, block by block."""
        return self.kind == "stream"

    @property
    def passes(self) -> int | None:
        """Passes begun over the batches so far: a stream's epochs (1 until it is
        read again), 1 for stacked arrays, ``None`` for a callable."""
        if self.kind == "stream":
            return self._stream.passes
        return 1 if self.kind == "stacked" else None

    @property
    def batch_fn(self) -> Static | None:
        """The callable ``step -> batch`` traced in the program (a :class:`Static`), or
        ``None`` when the program reads batches from data blocks."""
        return Static(self.fn) if self.kind == "callable" else None

    def in_memory(self, num_steps: int, block: int) -> Any:
        """What the program reads its batches from: stacked data as host arrays
        ``[n_blocks, block, ...]``, or a callable's (unused) step slots ``[n_blocks,
        block]``. Streams have no such array (see :meth:`stream_blocks`)."""
        if self.kind == "callable":
            return np.zeros((-(-num_steps // block), block), np.int32)
        return self.stacked_blocks(num_steps, block)

    def block_specs(self, n_blocks: int, block: int) -> Any:
        """Shapes and dtypes of :meth:`in_memory`'s array."""
        if self.kind == "callable":
            return jax.ShapeDtypeStruct((n_blocks, block), jnp.int32)
        return jax.tree.map(
            lambda x: jax.ShapeDtypeStruct((n_blocks, block, *x.shape), x.dtype), self.example
        )

    def check_steps(self, num_steps: int) -> None:
        """Raises ValueError naming ``num_steps`` when there are fewer stacked batches."""
        if self.length is not None and num_steps > self.length:
            raise ValueError(
                f"num_steps={num_steps} is larger than the number of batches ({self.length}, "
                f"the leading axis of {self.name}); pass more batches, a callable step -> "
                "batch, or fewer num_steps"
            )

    def stacked_blocks(self, num_steps: int, block: int) -> Any:
        """Stacked data as host arrays ``[n_blocks, block, ...]``, the tail padded."""
        n_blocks = -(-num_steps // block)

        def cut(x):
            x = np.asarray(x)[:num_steps]
            pad = n_blocks * block - num_steps
            if pad:  # repeat the last batch; padded steps change nothing (masked)
                x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
            return x.reshape(n_blocks, block, *x.shape[1:])

        return jax.tree.map(cut, self.data)

    def stream_blocks(
        self, num_steps: int, block: int, per_call: int, keep: bool = False
    ) -> Iterator[Any]:
        """Yields host arrays ``[per_call, block, ...]`` covering ``num_steps`` steps.

        Batches kept by an earlier pass (``keep``, or :meth:`prefetch`) are
        replayed first; the rest are read from the stream as the pass goes
        (host memory: one call's batches) and, with ``keep``, kept too, so a
        later pass (one per chunk of copies) replays them.
        """
        steps_per_call = block * per_call
        n_calls = -(-num_steps // steps_per_call)
        if self._cache is None:
            self._cache = []
        for c in range(n_calls):
            start = c * steps_per_call
            want = min(steps_per_call, num_steps - start)
            part = self._cache[start : start + want]
            if len(part) < want:
                more = self._stream.take(want - len(part))
                if len(more) < want - len(part):
                    got = start + len(part) + len(more)
                    raise ValueError(
                        f"{self.name} ran out after {got} batches; num_steps={num_steps} needs "
                        f"{num_steps}, and a generator or iterator is read only once (pass a "
                        "re-iterable such as a list or a DataLoader to read it again each "
                        "epoch, more batches, or fewer num_steps)"
                    )
                if keep and len(self._cache) == start + len(part):
                    self._cache += more
                part = part + more
            part = part + [part[-1]] * (steps_per_call - len(part))
            leaves = [np.stack(col).reshape(per_call, block, *col[0].shape) for col in zip(*part)]
            yield jax.tree.unflatten(self._stream.treedef, leaves)

    def prefetch(self, num_steps: int) -> None:
        """Reads and keeps a stream's first ``num_steps`` batches, so that a short
        run over them (tune's rate test) leaves them for the passes after it."""
        if self.kind != "stream":
            return
        for _ in self.stream_blocks(num_steps, 1, 1, keep=True):
            pass


def prepare_val(val_batches: Any) -> Any:
    """Evaluation batches as host arrays stacked on a leading axis, or ``None``."""
    if val_batches is None:
        return None
    if callable(val_batches) and not is_stream(val_batches):
        raise TypeError(
            "val_batches must be a pytree of arrays with a leading batch axis or an iterable "
            f"of batches, got a callable {val_batches!r}"
        )
    if is_stream(val_batches):
        stream = _Stream(val_batches, "val_batches", epochs=False)  # one pass, read whole
        rows = stream.take(2**31 - 1)
        leaves = [np.stack(col) for col in zip(*rows)]
        return jax.tree.unflatten(stream.treedef, leaves)
    val_batches = host_tree(val_batches, "val_batches")
    stacked_length(val_batches, "val_batches")
    return jax.tree.map(np.asarray, val_batches)
