"""Random valid schedules of every structure, for the traceability and property tests.

A *structure* is a catalogue schedule (or a composition) with its static choices
fixed (mode strings, flags, the number of boundaries, which optional values are
``None``); everything numeric (step counts, milestones, boundaries, values) is
drawn. Builders take a :class:`Source`, so the same definitions serve a NumPy
generator (``test_traceability``) and Hypothesis' ``draw`` (``test_properties``).

Leaf types are fixed per field (step counts are Python ints, rates Python floats),
so two draws of one structure have the same pytree structure *and* the same leaf
avals: ``jax.jit`` must not recompile between them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

import lrjax
from lrjax.schedules import Schedule


class Source(Protocol):
    """Where the numbers come from."""

    def int(self, lo: int, hi: int) -> int:
        """An int in ``[lo, hi]``."""
        ...

    def float(self, lo: float, hi: float) -> float:
        """A float in ``[lo, hi]``."""
        ...


class NumpySource:
    """A :class:`Source` backed by ``np.random.Generator``."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def int(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def float(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))


class DrawSource:
    """A :class:`Source` backed by Hypothesis' ``draw`` (shrinks well)."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        from hypothesis import strategies as st

        self.draw, self.st = draw, st

    def int(self, lo: int, hi: int) -> int:
        return self.draw(self.st.integers(lo, hi))

    def float(self, lo: float, hi: float) -> float:
        return self.draw(self.st.floats(lo, hi, allow_nan=False, allow_subnormal=False))


def sorted_ints(src: Source, k: int, lo: int, gap: int) -> list[int]:
    """``k`` strictly increasing ints from ``lo`` on, consecutive gaps in ``[1, gap]``."""
    out: list[int] = []
    for _ in range(k):
        out.append((out[-1] if out else lo - 1) + src.int(1, gap))
    return out


def rate(src: Source) -> float:
    """A learning rate in ``[0.01, 1]``."""
    return src.float(0.01, 1.0)


# --------------------------------------------------------------------- catalogue


def _cyclic(mode: str, down: bool) -> Callable[[Source], Schedule]:
    def make(src: Source) -> Schedule:
        return lrjax.cyclic(
            base_value=src.float(0.0, 0.1),
            max_value=src.float(0.2, 1.0),
            step_size_up=src.int(1, 60),
            step_size_down=src.int(1, 60) if down else None,
            mode=mode,
            gamma=src.float(0.99, 1.0),
        )

    return make


def _one_cycle(convention: str, three_phase: bool, anneal: str, momentum: bool):
    def make(src: Source) -> Schedule:
        pct = src.float(0.05, 0.45 if three_phase else 0.9)
        common = {
            "total_steps": src.int(2, 300),
            "pct_start": pct,
            "three_phase": three_phase,
            "anneal": anneal,
            "convention": convention,
        }
        if momentum:
            return lrjax.one_cycle_momentum(
                base_momentum=src.float(0.5, 0.9), max_momentum=src.float(0.9, 0.99), **common
            )
        return lrjax.one_cycle(
            max_value=rate(src),
            div_factor=src.float(2.0, 50.0),
            final_div_factor=src.float(10.0, 1e5),
            **common,
        )

    return make


def _wsd(shape: str) -> Callable[[Source], Schedule]:
    def make(src: Source) -> Schedule:
        total = src.int(1, 300)
        fraction = src.float(0.0, 1.0)
        decay = round(fraction * total)
        return lrjax.wsd(
            peak_value=rate(src),
            total_steps=total,
            warmup_steps=src.int(0, total - decay),
            decay_fraction=fraction,
            decay_shape=shape,
            end_value=src.float(0.0, 0.01),
        )

    return make


def _piecewise(at_boundary: str, k: int) -> Callable[[Source], Schedule]:
    def make(src: Source) -> Schedule:
        return lrjax.piecewise_constant(
            boundaries=sorted_ints(src, k, 0, 150),
            values=[rate(src) for _ in range(k + 1)],
            at_boundary=at_boundary,
        )

    return make


def _exponential(staircase: bool, end: bool) -> Callable[[Source], Schedule]:
    def make(src: Source) -> Schedule:
        # With an end value the rate may grow (end is then a ceiling), as in Optax.
        decay_rate = src.float(0.5, 1.5) if end else src.float(0.3, 1.0)
        return lrjax.exponential(
            init_value=rate(src),
            decay_rate=decay_rate,
            decay_steps=src.int(1, 60),
            staircase=staircase,
            transition_begin=src.int(0, 60),
            end_value=src.float(0.001, 2.0) if end else None,
        )

    return make


def _polynomial(cycle: bool) -> Callable[[Source], Schedule]:
    def make(src: Source) -> Schedule:
        return lrjax.polynomial(
            init_value=rate(src),
            end_value=src.float(0.0, 0.01),
            steps=src.int(1, 200),
            power=src.float(0.3, 3.0),
            cycle=cycle,
        )

    return make


def _inverse_time(staircase: bool) -> Callable[[Source], Schedule]:
    def make(src: Source) -> Schedule:
        return lrjax.inverse_time(
            init_value=rate(src),
            decay_rate=src.float(0.0, 2.0),
            decay_steps=src.int(1, 60),
            staircase=staircase,
        )

    return make


CATALOGUE_STRUCTURES: dict[str, Callable[[Source], Schedule]] = {
    "constant": lambda src: lrjax.constant(rate(src)),
    "step_decay": lambda src: lrjax.step_decay(rate(src), src.int(1, 80), src.float(0.0, 1.0)),
    "multistep": lambda src: lrjax.multistep(
        rate(src), sorted_ints(src, 3, 0, 150), src.float(0.0, 1.0)
    ),
    "piecewise_constant/new/0": _piecewise("new", 0),
    "piecewise_constant/new/3": _piecewise("new", 3),
    "piecewise_constant/old/3": _piecewise("old", 3),
    "exponential": _exponential(False, False),
    "exponential/staircase": _exponential(True, False),
    "exponential/end_value": _exponential(False, True),
    "exponential/staircase/end_value": _exponential(True, True),
    "linear": lambda src: lrjax.linear(
        rate(src), src.float(0.0, 1.0), src.int(1, 200), src.int(0, 100)
    ),
    "polynomial": _polynomial(False),
    "polynomial/cycle": _polynomial(True),
    "inverse_time": _inverse_time(False),
    "inverse_time/staircase": _inverse_time(True),
    "inverse_sqrt": lambda src: lrjax.inverse_sqrt(rate(src), src.int(1, 150)),
    "rex": lambda src: lrjax.rex(rate(src), src.int(1, 200), src.float(0.0, 0.01)),
    "cosine": lambda src: lrjax.cosine(
        rate(src), src.int(1, 200), src.float(0.0, 0.01), src.float(0.3, 3.0)
    ),
    "cosine_restarts": lambda src: lrjax.cosine_restarts(
        rate(src),
        src.int(1, 60),
        period_mult=src.int(1, 3),
        decay=src.float(0.5, 1.0),
        end_value=src.float(0.0, 0.01),
    ),
    "flat_cos": lambda src: lrjax.flat_cos(rate(src), src.int(1, 300), src.float(0.05, 0.95)),
    "wsd/linear": _wsd("linear"),
    "wsd/sqrt": _wsd("sqrt"),
    "wsd/cosine": _wsd("cosine"),
}
for _mode in ("triangular", "triangular2", "exp_range"):
    CATALOGUE_STRUCTURES[f"cyclic/{_mode}"] = _cyclic(_mode, False)
    CATALOGUE_STRUCTURES[f"cyclic/{_mode}/step_size_down"] = _cyclic(_mode, True)
for _name in ("one_cycle", "one_cycle_momentum"):
    for _conv in ("fastai", "torch"):
        for _three in (False, True):
            for _anneal in ("cos", "linear"):
                _key = f"{_name}/{_conv}/{'three_phase' if _three else 'two_phase'}/{_anneal}"
                CATALOGUE_STRUCTURES[_key] = _one_cycle(
                    _conv, _three, _anneal, _name == "one_cycle_momentum"
                )


# ------------------------------------------------------------------ compositions


def _join(src: Source) -> Schedule:
    pieces = [CATALOGUE_STRUCTURES[k](src) for k in ("linear", "cosine", "step_decay")]
    return lrjax.join(pieces, sorted_ints(src, 2, 0, 200))


def _clip(src: Source) -> Schedule:
    lo = src.float(0.0, 0.3)
    inner = CATALOGUE_STRUCTURES["one_cycle/fastai/two_phase/cos"](src)
    return lrjax.clip(inner, lo=lo, hi=lo + src.float(0.0, 0.7))


COMPOSITION_STRUCTURES: dict[str, Callable[[Source], Schedule]] = {
    "warmup": lambda src: lrjax.warmup(
        CATALOGUE_STRUCTURES["cosine"](src), src.int(0, 100), init_value=src.float(0.0, 0.01)
    ),
    "join": _join,
    "clip": _clip,
    "scale": lambda src: CATALOGUE_STRUCTURES["cosine_restarts"](src) * src.float(0.1, 3.0),
    "add": lambda src: (
        CATALOGUE_STRUCTURES["cyclic/triangular/step_size_down"](src)
        + CATALOGUE_STRUCTURES["linear"](src)
    ),
    "add/constant": lambda src: (
        CATALOGUE_STRUCTURES["exponential/staircase"](src) + src.float(0.0, 0.01)
    ),
    "product": lambda src: (
        CATALOGUE_STRUCTURES["wsd/cosine"](src) * CATALOGUE_STRUCTURES["inverse_sqrt"](src)
    ),
    "nested": lambda src: lrjax.warmup(
        _join(src) * src.float(0.5, 2.0), src.int(1, 50), init_value=src.float(0.0, 0.01)
    ),
}

STRUCTURES = {**CATALOGUE_STRUCTURES, **COMPOSITION_STRUCTURES}
