"""Host data onto the devices: shared inputs replicated, copies split over a mesh."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def _global_array(x: Any, sharding: NamedSharding) -> jax.Array:
    """``x`` as a global array (every process passes the same value)."""
    if jnp.issubdtype(jnp.result_type(x), jax.dtypes.prng_key):  # e.g. NNX RNG streams
        impl = jax.random.key_impl(x)
        return jax.random.wrap_key_data(_global_array(jax.random.key_data(x), sharding), impl=impl)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


class Placement:
    """Puts host data on the devices: shared inputs replicated, copies split.

    Attributes:
      mesh: the device mesh, or ``None`` (the default device).
      out_sharding: outputs replicated over the mesh (each process of a
        multi-host run gets the full result), or ``None``.
      copy_sharding: the copy axis (axis 1, after the seed axis) split over
        every axis of the mesh, or ``None``.
    """

    def __init__(self, mesh: Mesh | None):
        self.mesh = mesh
        if mesh is None:
            self.out_sharding = self.copy_sharding = None
            return
        axes = tuple(mesh.axis_names)
        self.out_sharding = NamedSharding(mesh, PartitionSpec())
        self._split0 = NamedSharding(mesh, PartitionSpec(axes))
        self.copy_sharding = NamedSharding(mesh, PartitionSpec(None, axes))

    @property
    def devices(self) -> int:
        """The number of devices the copies are split over."""
        return 1 if self.mesh is None else self.mesh.devices.size

    def shared(self, tree: Any) -> Any:
        if self.mesh is None:  # device_put copies; jnp.asarray would compile a program
            return jax.device_put(tree)
        return jax.tree.map(lambda x: _global_array(x, self.out_sharding), tree)

    def copies(self, tree: Any, axis: int = 0) -> Any:
        if self.mesh is None:
            return jax.device_put(tree)
        sharding = self._split0 if axis == 0 else self.copy_sharding
        return jax.tree.map(lambda x: _global_array(x, sharding), tree)


def take_copy(tree: Any, seed: int, index: int) -> Any:
    """Copy ``(seed, index)`` of a result's stacked parameters or state.

    ``...``: a 0-d leaf stays an array (NumPy would give a read-only scalar,
    which a rebuilt NNX model cannot update, e.g. its RNG count). Leaves that
    are not arrays (an Equinox model's functions and flags) are kept.
    """
    pick = lambda a: a[seed, index, ...] if isinstance(a, (np.ndarray, jax.Array)) else a
    return jax.tree.map(pick, tree)


def _is_key(x: Any) -> bool:
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_host(tree: Any) -> Any:
    """Arrays as NumPy; PRNG key arrays (NNX RNG state) stay JAX arrays."""
    return jax.tree.map(lambda x: x if _is_key(x) else np.asarray(x), tree)


def concat(xs: Any, axis: int) -> Any:
    """``np.concatenate`` (``jnp`` for PRNG key arrays, which NumPy cannot hold)."""
    return (jnp if _is_key(xs[0]) else np).concatenate(xs, axis=axis)
