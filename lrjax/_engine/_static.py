"""Callables as static arguments of a jitted program, and the optimizer builder.

``make_tx(h, step)`` builds a copy's optimizer from its hyperparameters ``h``
inside the trace. The engine knows no hyperparameter by name: the fronts pass
a :class:`Static` subclass (:class:`KwargsOptimizer` for named values; the
range test and the ramp define theirs for rates).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lrjax._engine._models._common import StructureKey


class Static:
    """Hashes and compares a callable by its structure, so it can be a static jit arg.

    Two functions with the same code, globals, defaults and closed-over values
    trace to the same program (``StructureKey(fn, strict=True)``): a ``lambda
    lr: optax.adam(lr)`` or a loss written anew for every call (in a loop, a
    notebook cell re-run) hits the compilation cache, where comparing by
    identity compiled again each time. A different closed-over number (an
    activation slope, a weight decay) is a different key; a closed-over list,
    dict or other mutable object is compared by identity.
    """

    __slots__ = ("fn", "key")

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.key = StructureKey(fn, strict=True)

    def __hash__(self) -> int:
        return hash((type(self), self.key))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.key == self.key  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return repr(self.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


class KwargsOptimizer(Static):
    """``make_tx``: ``h`` is a dict of scalars, ``make_optimizer(**h)``."""

    def __call__(self, h: Any, step: Any) -> Any:
        return self.fn(**h)
