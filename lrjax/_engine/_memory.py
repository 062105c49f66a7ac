"""``chunk_size="auto"``: the largest chunk of copies that fits the free device memory.

The compiled program states its own memory needs (``memory_analysis()``:
arguments, outputs and temporaries). Compiling it for ``n`` and ``2n`` copies
(``n`` = the device count) separates the cost of one copy (its parameters,
optimizer state, model state and activations) from the shared part (the data);
the chunk is then the number of copies whose cost fits ``FRACTION`` of the
free memory of one device.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax

#: The share of free device memory a chunk may take.
FRACTION = 0.7


def program_bytes(compiled: Any) -> int:
    """Arguments + outputs + temporaries of a compiled program, in bytes."""
    ma = compiled.memory_analysis()
    if ma is None:
        raise RuntimeError("the compiled program reports no memory analysis on this backend")
    return int(
        ma.argument_size_in_bytes
        + ma.output_size_in_bytes
        + ma.temp_size_in_bytes
        - ma.alias_size_in_bytes
    )


def free_bytes(device: Any = None) -> int:
    """Free memory of ``device`` (default: the first local one); host RAM on a CPU."""
    device = device or jax.local_devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def per_copy_bytes(compile_for: Callable[[int], Any], n_dev: int) -> tuple[float, float]:
    """``(shared, per_copy)`` bytes per device, from programs for ``n`` and ``2n`` copies."""
    m1 = program_bytes(compile_for(n_dev)) / n_dev
    m2 = program_bytes(compile_for(2 * n_dev)) / n_dev
    per_copy = max(m2 - m1, 1.0)  # one more copy per device
    return max(m1 - per_copy, 0.0), per_copy


def auto_chunk(compile_for: Callable[[int], Any], num_copies: int, n_dev: int) -> int | None:
    """Copies per call that fit ``FRACTION`` of the free memory (``None``: all of them)."""
    shared, per_copy = per_copy_bytes(compile_for, n_dev)
    fit = int((FRACTION * free_bytes() - shared) // per_copy) * n_dev
    if fit >= num_copies:
        return None
    return max(n_dev, fit)
