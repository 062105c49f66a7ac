"""Callables as static arguments of a jitted program, and the optimizer builder.

``make_tx(h, step)`` builds a copy's optimizer from its hyperparameters ``h``
inside the trace. The engine knows no hyperparameter by name: the fronts pass
a :class:`Static` subclass (:class:`KwargsOptimizer` for named values; the
range test and the ramp define theirs for rates).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


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


class KwargsOptimizer(Static):
    """``make_tx``: ``h`` is a dict of scalars, ``make_optimizer(**h)``."""

    def __call__(self, h: Any, step: Any) -> Any:
        return self.fn(**h)
