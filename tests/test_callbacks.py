"""Oracle tests for ``lrjax.callbacks.early_stopping`` against Keras' ``EarlyStopping``.

Keras is driven by hand, as ``model.fit`` would: ``set_model`` with a stand-in
object that has ``stop_training``, ``on_train_begin()``, then
``on_epoch_end(epoch, {"loss": v})`` until the stand-in's ``stop_training`` turns
true. After every epoch lrjax's state must agree with the callback's attributes:
``should_stop`` with ``stop_training``, ``wait``, ``best`` (``has_best`` with
``best is not None``), ``best_step`` with ``best_epoch`` and ``stopped_step``
with ``stopped_epoch``.

Values are multiples of 2**-6 (and some NaN), ``min_delta`` and ``baseline`` are
multiples of 2**-6 or far from any, so every comparison is exact in float32 (Keras
compares with ``keras.ops`` in float32 too) and ties are exercised.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from lrjax.callbacks import EarlyStoppingState, early_stopping, keep_best

FIELDS = ("should_stop", "wait", "best", "has_best", "best_step", "stopped_step")


class FakeModel:
    """The one attribute ``EarlyStopping`` touches on a model without weights."""

    stop_training: bool = False


# ----------------------------------------------------------------------------- data


def make_sequence(rng: np.random.Generator, kind: int, n: int) -> np.ndarray:
    """A random monitored curve of length ``n``; ``kind`` picks the shape.

    Args:
      rng: the seeded generator.
      kind: 0 loss-like, 1 noisy walk, 2 coarse levels (ties), 3 improving then
        flat, 4 accuracy-like rising, 5 with NaN sprinkled in, 6 negative.
      n: the length.

    Returns:
      ``n`` float64 values, multiples of 2**-6 where not NaN.
    """
    t = np.arange(n, dtype=np.float64)
    if kind == 0:
        v = 2.0 * np.exp(-t / rng.uniform(2, 15)) + rng.normal(0, 0.05, n)
    elif kind == 1:
        v = np.cumsum(rng.normal(0, 0.2, n))
    elif kind == 2:
        v = rng.integers(0, 4, n) / 4.0
    elif kind == 3:
        k = int(rng.integers(1, n))
        v = 1.0 - 0.1 * np.minimum(t, k)
    elif kind == 4:
        v = 1.0 - np.exp(-t / rng.uniform(2, 10)) + rng.normal(0, 0.03, n)
    elif kind == 5:
        v = np.round((1.0 + np.cumsum(rng.normal(0, 0.2, n))) * 64) / 64
        v[rng.random(n) < 0.2] = np.nan
        if rng.random() < 0.3:
            v[0] = np.nan  # Keras then keeps best = nan
        return v
    else:
        v = -1.0 - np.cumsum(rng.normal(0.02, 0.1, n))
    return np.round(np.asarray(v) * 64) / 64


def sample_config(rng: np.random.Generator, values: np.ndarray) -> dict[str, Any]:
    """Random ``early_stopping`` arguments (Python numbers) for a sequence.

    Args:
      rng: the seeded generator.
      values: the sequence (the baseline is drawn near its values).

    Returns:
      lrjax keyword arguments (Keras' are derived by :func:`keras_trace`).
    """
    finite = values[np.isfinite(values)]
    baseline = None
    if rng.random() < 0.5 and finite.size:
        baseline = float(rng.choice(finite)) + float(rng.choice([0.0, 2.0**-6, -0.1, 0.3]))
    return {
        "mode": str(rng.choice(["min", "max"])),
        "min_delta": float(rng.choice([0.0, 0.0, 2.0**-6, -(2.0**-4), 0.25, -0.01, 0.03])),
        "patience": int(rng.integers(0, 6)),
        "baseline": baseline,
        "start_from_step": int(rng.integers(0, 4)),
    }


def make_cases(seed: int, count: int, n: int) -> list[tuple[dict[str, Any], np.ndarray]]:
    """``count`` random (config, values) pairs of length ``n``."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        values = make_sequence(rng, i % 7, n)
        cases.append((sample_config(rng, values), values))
    return cases


#: 160 random cases of (at most) 24 epochs.
CASES = make_cases(seed=2015, count=160, n=24)


# ------------------------------------------------------------------------ references


def keras_trace(values: Sequence[float], cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Keras ``EarlyStopping``'s attributes after each epoch, up to the stop.

    Args:
      values: the monitored ``loss`` per epoch.
      cfg: lrjax keyword arguments (``start_from_step`` is ``start_from_epoch``).

    Returns:
      One dict per epoch run, with lrjax's field names.
    """
    cb = keras.callbacks.EarlyStopping(
        monitor="loss",
        mode=cfg["mode"],
        min_delta=cfg["min_delta"],
        patience=cfg["patience"],
        baseline=cfg["baseline"],
        start_from_epoch=cfg["start_from_step"],
    )
    model = FakeModel()
    cb.set_model(model)
    cb.on_train_begin()
    out = []
    for epoch, v in enumerate(values):
        cb.on_epoch_end(epoch, {"loss": float(v)})
        out.append(
            {
                "should_stop": bool(model.stop_training),
                "wait": int(cb.wait),
                "best": np.nan if cb.best is None else float(cb.best),
                "has_best": cb.best is not None,
                "best_step": int(cb.best_epoch),
                "stopped_step": int(cb.stopped_epoch),
            }
        )
        if model.stop_training:
            break
    return out


def as_dict(state: EarlyStoppingState, i: int | None = None) -> dict[str, Any]:
    """The compared fields of ``state`` (or of row ``i`` of a stacked state)."""
    out = {}
    for name in FIELDS:
        x = np.asarray(getattr(state, name))
        x = x if i is None else x[i]
        out[name] = float(x) if name == "best" else (bool(x) if x.dtype == bool else int(x))
    return out


def assert_same(got: dict[str, Any], want: dict[str, Any], context: str) -> None:
    """Field-by-field equality; ``best`` compared as float32 (NaN equals NaN)."""
    for name in FIELDS:
        a, b = got[name], want[name]
        if name == "best":
            same = np.float32(a) == np.float32(b) or (np.isnan(a) and np.isnan(b))
        else:
            same = a == b
        assert same, f"{name}: lrjax {a!r} vs keras {b!r}; {context}"


def eager_trace(cfg: dict[str, Any], values: Sequence[float]) -> list[dict[str, Any]]:
    """lrjax's state after each eager ``update`` (Python arguments), up to the stop."""
    stopper = early_stopping(**cfg)
    state = stopper.init()
    out = []
    for v in values:
        state = stopper.update(state, float(v))
        out.append(as_dict(state))
        if out[-1]["should_stop"]:
            break
    return out


@functools.partial(jax.jit, static_argnames=("mode", "with_baseline"))
def scan_trace(
    hp: dict[str, jax.Array], values: jax.Array, *, mode: str, with_baseline: bool
) -> EarlyStoppingState:
    """Every state of a ``lax.scan`` over ``values``, vmapped over configurations.

    The stopper is built inside ``jax.vmap`` with traced ``min_delta``,
    ``patience``, ``baseline`` and ``start_from_step``.

    Args:
      hp: hyperparameters with a leading config axis ``C``.
      values: ``[C, N]`` monitored values.
      mode: static ``mode``.
      with_baseline: whether ``hp["baseline"]`` is used.

    Returns:
      The states after each update, fields of shape ``[C, N]``.
    """

    def one(hp: dict[str, jax.Array], vals: jax.Array) -> EarlyStoppingState:
        stopper = early_stopping(
            mode=mode,
            min_delta=hp["min_delta"],
            patience=hp["patience"],
            baseline=hp["baseline"] if with_baseline else None,
            start_from_step=hp["start_from_step"],
        )

        def body(s: EarlyStoppingState, v: jax.Array) -> tuple[Any, EarlyStoppingState]:
            s = stopper.update(s, v)
            return s, s

        return jax.lax.scan(body, stopper.init(), vals)[1]

    return jax.vmap(one)(hp, values)


def until_stop(stopper: Any, values: jax.Array) -> EarlyStoppingState:
    """``lax.while_loop`` over ``values`` while ``~state.should_stop``."""
    n = values.shape[0]

    def cond(s: EarlyStoppingState) -> jax.Array:
        return ~s.should_stop & (s.step < n)

    return jax.lax.while_loop(cond, lambda s: stopper.update(s, values[s.step]), stopper.init())


# ----------------------------------------------------------------------------- tests


def test_cases_cover_the_brief() -> None:
    """Both modes, negative min_delta, patience 0..5, baselines, warm-ups, stops."""
    cfgs = [c for c, _ in CASES]
    assert len(cfgs) >= 100
    assert {c["mode"] for c in cfgs} == {"min", "max"}
    assert {c["patience"] for c in cfgs} == set(range(6))
    assert {c["start_from_step"] for c in cfgs} == set(range(4))
    assert any(c["min_delta"] < 0 for c in cfgs)
    assert any(c["baseline"] is None for c in cfgs) and any(c["baseline"] is not None for c in cfgs)


@pytest.fixture(scope="module")
def keras_reference() -> list[list[dict[str, Any]]]:
    """Keras' trace for every case of :data:`CASES`."""
    return [keras_trace(v, c) for c, v in CASES]


def test_keras_stops_in_most_cases(keras_reference: list[list[dict[str, Any]]]) -> None:
    """The cases are not vacuous: Keras stops early in most, not all of them."""
    stops = sum(trace[-1]["should_stop"] for trace in keras_reference)
    assert 0.5 * len(CASES) < stops < len(CASES)


def test_eager_matches_keras_every_epoch(keras_reference: list[list[dict[str, Any]]]) -> None:
    """Eager updates with Python arguments: same state as Keras after every epoch."""
    for (cfg, values), want in zip(CASES[:40], keras_reference[:40]):
        got = eager_trace(cfg, values)
        assert len(got) == len(want), f"stopped at {len(got) - 1} vs {len(want) - 1}; {cfg}"
        for epoch, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"epoch {epoch}; {cfg}; values={values.tolist()}")


def test_jitted_scan_matches_keras_every_epoch(
    keras_reference: list[list[dict[str, Any]]],
) -> None:
    """All cases under ``jit(vmap(scan))`` with traced hyperparameters, up to Keras' stop."""
    for mode in ("min", "max"):
        for with_baseline in (False, True):
            idx = [
                i
                for i, (c, _) in enumerate(CASES)
                if c["mode"] == mode and (c["baseline"] is not None) == with_baseline
            ]
            cfgs = [CASES[i][0] for i in idx]
            hp = {
                "min_delta": jnp.asarray([c["min_delta"] for c in cfgs], jnp.float32),
                "patience": jnp.asarray([c["patience"] for c in cfgs], jnp.int32),
                "baseline": jnp.asarray([c["baseline"] or 0.0 for c in cfgs], jnp.float32),
                "start_from_step": jnp.asarray([c["start_from_step"] for c in cfgs], jnp.int32),
            }
            values = jnp.asarray(np.stack([CASES[i][1] for i in idx]), jnp.float32)
            states = jax.device_get(scan_trace(hp, values, mode=mode, with_baseline=with_baseline))
            for row, i in enumerate(idx):
                cfg, vals = CASES[i]
                want = keras_reference[i]
                row_state = jax.tree.map(lambda x, r=row: x[r], states)
                for epoch, w in enumerate(want):
                    got = as_dict(row_state, epoch)
                    assert_same(got, w, f"epoch {epoch}; {cfg}; values={vals.tolist()}")
                # once true, should_stop stays true and stopped_step stays put
                stop = np.asarray(row_state.should_stop)
                if stop.any():
                    first = int(np.argmax(stop))
                    assert stop[first:].all()
                    assert (np.asarray(row_state.stopped_step)[first:] == first).all()
                    assert len(want) == first + 1
                else:
                    assert len(want) == len(vals) and not want[-1]["should_stop"]


SETTINGS = (
    {"mode": "min", "min_delta": 0.0, "patience": 2},
    {"mode": "max", "min_delta": -(2.0**-5), "patience": 1, "start_from_step": 2},
    {"mode": "min", "min_delta": 2.0**-6, "patience": 3, "baseline": 0.5},
    {"mode": "max", "min_delta": 0.0, "patience": 0, "baseline": 0.75, "start_from_step": 1},
)


@pytest.mark.parametrize(
    "setting", SETTINGS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items())
)
def test_while_loop_and_scan_vmapped_over_sequences(setting: dict[str, Any]) -> None:
    """``jit(vmap(while_loop))`` and ``jit(vmap(scan))`` over 16 sequences.

    The while loop's final state equals the eager loop's (for 4 sequences) and
    Keras' (for all 16); the scan's states equal the eager trace up to the stop.
    """
    cfg = {"baseline": None, "start_from_step": 0, **setting}
    rng = np.random.default_rng(SETTINGS.index(setting))
    seqs = np.stack([make_sequence(rng, i % 7, 20) for i in range(16)])
    if cfg["mode"] == "max":
        seqs = np.where(np.isnan(seqs), seqs, -seqs)
    stopper = early_stopping(**cfg)
    values = jnp.asarray(seqs, jnp.float32)
    finals = jax.device_get(jax.jit(jax.vmap(functools.partial(until_stop, stopper)))(values))

    def scan_one(vals: jax.Array) -> EarlyStoppingState:
        def body(s: EarlyStoppingState, v: jax.Array) -> tuple[Any, EarlyStoppingState]:
            s = stopper.update(s, v)
            return s, s

        return jax.lax.scan(body, stopper.init(), vals)[1]

    traces = jax.device_get(jax.jit(jax.vmap(scan_one))(values))
    stops = 0
    for i, vals in enumerate(seqs):
        want = keras_trace(vals, cfg)
        final = as_dict(finals, i)
        assert_same(final, want[-1], f"while_loop, sequence {i}; {cfg}; {vals.tolist()}")
        assert int(finals.step[i]) == len(want)
        stops += final["should_stop"]
        for epoch, w in enumerate(want):
            assert_same(as_dict(jax.tree.map(lambda x, r=i: x[r], traces), epoch), w, str(cfg))
        if i < 4:
            eager = eager_trace(cfg, vals)
            assert len(eager) == len(want)
            assert_same(final, eager[-1], f"eager vs while_loop, sequence {i}; {cfg}")
    assert stops >= 4


def test_hand_checked_runs() -> None:
    """Short runs whose outcome can be read off Keras' rules (and agree with Keras)."""
    runs = [
        # patience 0 never stops at epoch 0; stops at the first non-improvement
        ({"patience": 0}, [1.0, 2.0, 0.5], 1),
        # a tie is not an improvement in "min" mode
        ({"patience": 1}, [1.0, 0.5, 0.5, 0.5], 2),
        # min_delta: 0.9 is not 0.25 better than 1.0
        ({"patience": 2, "min_delta": -0.25}, [1.0, 0.9, 0.8, 0.7], 2),
        # a baseline not beaten: wait keeps growing while best improves (no stop on an
        # improving epoch), so the first worse epoch stops (without it: wait would be 1)
        ({"patience": 2, "baseline": 0.1}, [1.0, 0.9, 0.95, 0.95], 2),
        # warm-up: the first two epochs are not monitored
        ({"patience": 0, "start_from_step": 2}, [5.0, 6.0, 7.0, 8.0], 3),
    ]
    for cfg, values, stop_at in runs:
        full = {"mode": "min", "min_delta": 0.0, "baseline": None, "start_from_step": 0, **cfg}
        trace = eager_trace(full, values)
        assert len(trace) == stop_at + 1 and trace[-1]["should_stop"], (cfg, trace)
        assert trace[-1]["stopped_step"] == stop_at
        for g, w in zip(trace, keras_trace(values, full)):
            assert_same(g, w, str(cfg))


def test_init_state() -> None:
    """``init()`` gives the documented NamedTuple of scalar arrays."""
    state = early_stopping().init()
    assert isinstance(state, EarlyStoppingState)
    assert all(jnp.shape(x) == () for x in state)
    assert not bool(state.should_stop) and not bool(state.has_best)
    assert int(state.step) == 0 and np.isnan(float(state.best))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"mode": "auto"}, "mode"),
        ({"mode": "minimum"}, "mode"),
        ({"patience": -1}, "patience"),
        ({"patience": 1.5}, "patience"),
        ({"start_from_step": -1}, "start_from_step"),
        ({"start_from_step": 0.5}, "start_from_step"),
        ({"min_delta": float("nan")}, "min_delta"),
        ({"baseline": float("nan")}, "baseline"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], name: str) -> None:
    """Each bad argument raises ValueError naming the parameter."""
    with pytest.raises(ValueError, match=name):
        early_stopping(**kwargs)


def test_update_rejects_a_foreign_state() -> None:
    """``update`` checks its state argument."""
    with pytest.raises(TypeError, match="EarlyStoppingState"):
        early_stopping().update((0, 0), 1.0)


# ------------------------------------------------------------------- keep_best


class FakeModelWithWeights:
    """A model whose weights are one array stamped with the epoch that wrote them."""

    def __init__(self) -> None:
        self.stop_training = False
        self.weights = [np.zeros(2)]

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.weights = [w.copy() for w in weights]


def keras_restored_weights(values: Sequence[float], cfg: dict[str, Any]) -> float:
    """The weight Keras' ``EarlyStopping(restore_best_weights=True)`` leaves.

    Epoch ``e`` trains the weights to ``e + 1``; ``fit`` stops when the callback
    says so and calls ``on_train_end``, which restores the best weights.
    """
    cb = keras.callbacks.EarlyStopping(
        monitor="loss",
        mode=cfg["mode"],
        min_delta=cfg["min_delta"],
        patience=cfg["patience"],
        baseline=cfg["baseline"],
        start_from_epoch=cfg["start_from_step"],
        restore_best_weights=True,
    )
    model = FakeModelWithWeights()
    cb.set_model(model)
    cb.on_train_begin()
    for epoch, v in enumerate(values):
        model.weights = [np.full(2, epoch + 1.0)]
        cb.on_epoch_end(epoch, {"loss": float(v)})
        if model.stop_training:
            break
    cb.on_train_end()
    return float(model.weights[0][0])


def lrjax_restored_params(values: Sequence[float], cfg: dict[str, Any]) -> float:
    """The documented recipe: ``keep_best`` after every update, best at the end."""
    stopper = early_stopping(**cfg)
    state = stopper.init()
    params = best = {"w": jnp.zeros(2)}
    for epoch, v in enumerate(values):
        params = {"w": jnp.full(2, epoch + 1.0)}
        state = stopper.update(state, float(v))
        best = keep_best(state, params, best)
        if state.should_stop:
            break
    final = best if bool(state.has_best) else params
    return float(final["w"][0])


@pytest.mark.parametrize("case", range(0, 160, 4))
def test_keep_best_restores_what_keras_restore_best_weights_restores(case):
    cfg, values = CASES[case]
    assert lrjax_restored_params(values, cfg) == keras_restored_weights(values, cfg), cfg


def brute_force_best_epoch(values: Sequence[float], mode: str, min_delta: float) -> int:
    """The epoch whose parameters to keep: a first value, then strict improvements."""
    best, best_epoch = None, 0
    for epoch, v in enumerate(values):
        if best is None:
            better = True
        elif mode == "max":
            better = v - abs(min_delta) > best
        else:
            better = v + abs(min_delta) < best
        if better:
            best, best_epoch = v, epoch
    return best_epoch


def test_keep_best_matches_a_python_loop_and_runs_inside_a_jitted_scan():
    rng = np.random.default_rng(7)
    stopper = early_stopping(mode="min", min_delta=0.01, patience=1000)

    @jax.jit
    def run(values):
        def step(carry, xs):
            state, best = carry
            epoch, v = xs
            params = {"w": jnp.full((3,), epoch, jnp.float32), "b": epoch * 2}
            state = stopper.update(state, v)
            return (state, keep_best(state, params, best)), None

        start = {"w": jnp.full((3,), -1.0), "b": jnp.asarray(-2)}
        (state, best), _ = jax.lax.scan(
            step, (stopper.init(), start), (jnp.arange(len(values)), values)
        )
        return state, best

    for _ in range(20):
        values = np.round(np.cumsum(rng.normal(0, 0.1, 30)) * 64) / 64
        want = brute_force_best_epoch(list(values), "min", 0.01)
        state, best = run(jnp.asarray(values, jnp.float32))
        assert int(state.best_step) == want
        np.testing.assert_array_equal(best["w"], np.full(3, want, np.float32))
        assert int(best["b"]) == 2 * want


def test_keep_best_checks_its_arguments():
    state = early_stopping().init()
    with pytest.raises(TypeError, match="state must be an EarlyStoppingState"):
        keep_best({"step": 0}, {"w": 1.0}, {"w": 1.0})
    with pytest.raises(ValueError, match="params and best_params must have the same structure"):
        keep_best(state, {"w": 1.0}, {"v": 1.0})
    # Nothing monitored yet: the start is kept.
    assert float(keep_best(state, {"w": 5.0}, {"w": 1.0})["w"]) == 1.0


def brute_force_early_stopping(
    values: Sequence[float],
    mode: str,
    min_delta: float,
    patience: int,
    baseline: float | None,
    start_from_step: int,
) -> list[tuple[bool, float | None, int]]:
    """``(should_stop, best, best_step)`` after each update, from the docstring's rules."""
    d = abs(min_delta)

    def improves(v: float, ref: float) -> bool:
        return v + d < ref if mode == "min" else v - d > ref

    stop, best, best_step, wait = False, None, 0, 0
    out = []
    for step, v in enumerate(values):
        if step >= start_from_step:
            wait += 1
            if best is None or improves(v, best):
                best, best_step = v, step
                if baseline is None or improves(v, baseline):
                    wait = 0
            elif wait >= patience and step > 0:
                stop = True
        out.append((stop, best, best_step))
    return out


def negative_cases(seed: int, count: int) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Random all-negative curves (a loss below zero, or a negative reward in "max")."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        n = 20
        shape = i % 4
        if shape == 0:  # improving, then flat: stops after patience
            v = -1.0 - 0.25 * np.minimum(np.arange(n), int(rng.integers(2, 12)))
        elif shape == 1:  # a noisy walk
            v = -3.0 + np.cumsum(rng.normal(0, 0.2, n))
        elif shape == 2:  # worsening toward zero (min) / improving (max)
            v = -4.0 + 0.15 * np.arange(n) + rng.normal(0, 0.05, n)
        else:  # flat
            v = np.full(n, -1.5)
        v = np.minimum(np.round(v * 64) / 64, -(2.0**-6))
        mode = ("min", "max")[(i // 4) % 2]
        baseline = None if rng.random() < 0.5 else float(rng.choice(v)) + rng.choice([0, -0.25])
        cfg = {
            "mode": mode,
            "min_delta": float(rng.choice([0.0, 2.0**-6, 2.0**-4, 0.03])),
            "patience": int(rng.integers(0, 5)),
            "baseline": baseline,
            "start_from_step": int(rng.integers(0, 4)),
        }
        cases.append((cfg, v))
    return cases


def test_negative_values_match_a_python_loop_every_update():
    """All-negative values: stop, best and best_step after each update, as the loop says.

    Values are on the 2**-6 grid and the deltas either on it or far from it
    (0.03), so float32 and float64 compare alike.
    """
    stops = 0
    for cfg, values in negative_cases(seed=31, count=48):
        want = brute_force_early_stopping(list(values), **cfg)
        stopper = early_stopping(**cfg)
        state = stopper.init()
        for step, v in enumerate(values):
            state = stopper.update(state, float(v))
            stop, best, best_step = want[step]
            got = (bool(state.should_stop), bool(state.has_best), int(state.best_step))
            assert got == (stop, best is not None, best_step), (step, cfg, values.tolist())
            if best is not None:
                assert float(state.best) == best  # a value fed in, exact in float32
        stops += stop
    assert 10 <= stops <= 44  # both outcomes occur


@pytest.mark.parametrize("mode", ["min", "max"])
def test_keep_best_before_and_after_monitoring_starts_matches_a_python_loop(mode):
    """``start_from_step > 0``: the start is kept until a monitored update sets a best.

    Checked after every update against the loop, not only at the end: before
    monitoring starts ``best_step`` is 0 and ``step - 1`` passes it, so a rule
    that ignored ``has_best`` would hand back update 0's parameters there.
    """
    checked_before = 0
    for i, (cfg, values) in enumerate(negative_cases(seed=5 + (mode == "max"), count=32)):
        cfg = {**cfg, "mode": mode, "start_from_step": 2 + i % 3, "patience": 100}
        want = brute_force_early_stopping(list(values), **cfg)
        stopper = early_stopping(**cfg)
        state = stopper.init()
        start = {"w": jnp.full(2, -1.0)}
        best = start
        for step, v in enumerate(values):
            params = {"w": jnp.full(2, float(step))}
            state = stopper.update(state, float(v))
            best = keep_best(state, params, best)
            _, best_value, best_step = want[step]
            expected = -1.0 if best_value is None else float(best_step)
            np.testing.assert_array_equal(best["w"], np.full(2, expected, np.float32))
            checked_before += best_value is None and step >= 1
    assert checked_before >= 48  # 1 to 3 unmonitored updates after the first, per case
