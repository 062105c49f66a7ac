"""Oracle tests for ``lrjax.reduce_on_plateau``.

The reference is the real ``torch.optim.lr_scheduler.ReduceLROnPlateau``: a dummy
SGD optimizer with ``lr=1.0`` is stepped with ``scheduler.step(value)`` and its
``param_groups[0]["lr"]`` is the scale lrjax must hold after the same check
(``min_lr`` is then ``min_scale`` and torch's ``eps`` is lrjax's ``eps``). Where
lrjax deliberately differs from torch (the relative threshold once the best value
is negative: the margin is ``threshold * |best|``, see the docstring) and for the
increase-again rule, which torch does not have, the reference is a plain-Python
loop written from the docstring's rules (:func:`reference_scales`, itself checked
against torch wherever the two rules coincide). :func:`oracle_scales` picks torch
whenever torch's rule is the documented one.

Every sequence is drawn from a seeded ``numpy.random.default_rng`` and rounded to
multiples of 2**-8, so exact ties (``value == best``) occur and are represented
exactly in float32. lrjax runs in float32, torch in float64: scales are compared
relatively, with a bound of one float32 rounding per multiply (see
:func:`assert_scales`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from oracles import assert_trees_identical

from lrjax.transforms import ReduceOnPlateauState, reduce_on_plateau

#: float32 unit roundoff.
U32 = 2.0**-24

KINDS = (
    "negative",
    "constant",
    "noisy",
    "increasing",
    "decreasing_flat",
    "loss_like",
    "zero_crossing",
    "steps",
    "large",
)


# ----------------------------------------------------------------------------- data


def make_sequence(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    """A NaN-free sequence of monitored values of the given ``kind``.

    Args:
      rng: the seeded generator.
      kind: one of :data:`KINDS`.
      n: the length.

    Returns:
      ``n`` float64 values, multiples of 2**-8 (exact in float32).
    """
    t = np.arange(n, dtype=np.float64)
    if kind == "negative":
        v = -0.5 - np.abs(rng.normal(0, 0.3)) - 0.5 * rng.random() * np.log1p(t)
        v = v + rng.normal(0, 0.05, n)
        v = np.minimum(v, -(2.0**-8))
    elif kind == "constant":
        v = np.full(n, rng.choice([-3.0, -0.5, 0.0, 0.25, 2.0]))
    elif kind == "noisy":
        v = rng.normal(rng.normal(0, 2), rng.choice([0.01, 0.1, 1.0]), n)
    elif kind == "increasing":
        v = rng.normal(0, 1) + np.cumsum(rng.random(n) * 0.2)
    elif kind == "decreasing_flat":
        k = int(rng.integers(1, n))
        v = 2.0 - 0.1 * np.minimum(t, k) + rng.choice([0.0, 0.004]) * rng.normal(size=n)
    elif kind == "loss_like":
        v = 2.0 * np.exp(-t / rng.uniform(3, 30)) + 0.1 + rng.normal(0, 0.02, n)
    elif kind == "zero_crossing":
        v = np.linspace(1.0, -1.0, n) * rng.choice([1.0, -1.0]) + rng.normal(0, 0.1, n)
    elif kind == "steps":
        levels = rng.integers(-4, 5, size=max(1, n // 5)).astype(np.float64) / 4
        v = np.repeat(levels, 5)[:n]
        v = np.concatenate([v, np.full(n - len(v), levels[-1])])
    elif kind == "large":
        v = 1000.0 * rng.choice([1.0, -1.0]) + np.cumsum(rng.normal(-1.0, 5.0, n))
    else:
        raise ValueError(kind)
    return np.round(np.asarray(v, np.float64) * 256) / 256


def sample_config(rng: np.random.Generator, mode: str, threshold_mode: str) -> dict[str, Any]:
    """Random valid ``reduce_on_plateau`` / torch arguments (as Python numbers).

    Args:
      rng: the seeded generator.
      mode: ``"min"`` or ``"max"``.
      threshold_mode: ``"rel"`` or ``"abs"``.

    Returns:
      lrjax keyword arguments; torch's are derived by :func:`torch_scales`.
    """
    if threshold_mode == "rel":
        threshold = float(rng.choice([0.0, 1e-4, 1e-3, 1e-2, 0.05, 0.2]))
    else:
        threshold = float(rng.choice([0.0, 2.0**-8, 2.0**-4, 0.01, 0.1, 0.5]))
    factor = 0.0 if rng.random() < 0.08 else float(rng.uniform(0.05, 0.95))
    return {
        "mode": mode,
        "threshold_mode": threshold_mode,
        "factor": factor,
        "patience": int(rng.integers(0, 6)),
        "cooldown": int(rng.integers(0, 5)),
        "threshold": threshold,
        "min_scale": float(rng.choice([0.0, 0.0, 1e-4, 1e-2, 0.05, 0.2])),
        "eps": float(rng.choice([1e-8, 1e-8, 0.0, 1e-3, 0.01])),
    }


def make_cases(seed: int, count: int, n: int) -> list[tuple[dict[str, Any], np.ndarray]]:
    """``count`` (config, values) pairs covering every mode, threshold mode and kind.

    Args:
      seed: the RNG seed.
      count: how many cases.
      n: the length of each sequence.

    Returns:
      The cases, in a fixed order.
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        mode = ("min", "max")[i % 2]
        threshold_mode = ("rel", "abs")[(i // 2) % 2]
        kind = KINDS[i % len(KINDS)]
        values = make_sequence(rng, kind, n)
        if mode == "max" and rng.random() < 0.5:
            values = -values  # a rising accuracy-like curve for "max"
        cases.append((sample_config(rng, mode, threshold_mode), values))
    return cases


#: 72 random cases, 60 checks each.
CASES = make_cases(seed=20240601, count=72, n=60)


# ------------------------------------------------------------------------ references


def torch_scales(values: Sequence[float], cfg: dict[str, Any]) -> np.ndarray:
    """The lr of torch's ``ReduceLROnPlateau`` (initial lr 1.0) after each ``step``.

    Args:
      values: the monitored values, one ``scheduler.step`` each.
      cfg: lrjax keyword arguments (``min_scale`` becomes ``min_lr``).

    Returns:
      ``len(values)`` float64 learning rates.
    """
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt,
        mode=cfg["mode"],
        factor=cfg["factor"],
        patience=cfg["patience"],
        threshold=cfg["threshold"],
        threshold_mode=cfg["threshold_mode"],
        cooldown=cfg["cooldown"],
        min_lr=cfg["min_scale"],
        eps=cfg["eps"],
    )
    out = []
    for v in values:
        sched.step(float(v))
        out.append(opt.param_groups[0]["lr"])
    return np.asarray(out, np.float64)


def torch_rule_applies(values: Sequence[float], cfg: dict[str, Any]) -> bool:
    """Whether torch's rule is lrjax's on ``values``: no negative best can arise.

    In ``"abs"`` mode the rules are the same; in ``"rel"`` mode they differ only
    once ``best`` is negative, which needs a negative value (NaN never becomes
    ``best`` after the first check, and is not negative).
    """
    return cfg["threshold_mode"] == "abs" or not bool(np.any(np.asarray(values) < 0))


def oracle_scales(values: Sequence[float], cfg: dict[str, Any]) -> np.ndarray:
    """torch's scales where its rule is lrjax's, else :func:`reference_scales`."""
    if torch_rule_applies(values, cfg):
        return torch_scales(values, cfg)
    return reference_scales(values, **cfg)


def reference_scales(
    values: Sequence[float],
    *,
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_scale: float = 0.0,
    eps: float = 1e-8,
    accumulation_steps: int = 1,
    increase_factor: float | None = None,
    increase_patience: int | None = None,
    max_scale: float = 1.0,
    trace: list[tuple[float, int, int]] | None = None,
) -> np.ndarray:
    """Brute-force Python (float64) version of the docstring's rules.

    Written from ``reduce_on_plateau``'s docstring, not from its code: a check every
    ``accumulation_steps`` values on their mean; ``better`` with the relative margin
    ``threshold * |best|`` (torch's ``best * (1 -/+ threshold)`` for ``best >= 0``;
    while there is no finite best, any value below/above it is better); torch's
    bad-count / cooldown / eps rules; and, with ``increase_factor``, once a reduction has been
    applied, ``increase_patience`` consecutive improving checks outside cooldown
    multiply the scale by ``increase_factor`` (at most ``max_scale``; an increase
    never lowers the scale), after which the count starts again.

    Args:
      values: the value passed to each update.
      mode: see ``reduce_on_plateau``; the other arguments likewise.
      factor: see ``reduce_on_plateau``.
      patience: see ``reduce_on_plateau``.
      threshold: see ``reduce_on_plateau``.
      threshold_mode: see ``reduce_on_plateau``.
      cooldown: see ``reduce_on_plateau``.
      min_scale: see ``reduce_on_plateau``.
      eps: see ``reduce_on_plateau``.
      accumulation_steps: see ``reduce_on_plateau``.
      increase_factor: see ``reduce_on_plateau``.
      increase_patience: see ``reduce_on_plateau`` (default ``patience + 1``).
      max_scale: see ``reduce_on_plateau``.
      trace: if given, ``(best, num_bad, cooldown_counter)`` is appended to it
        after each check.

    Returns:
      The scale in force after each update.
    """
    if increase_factor is not None and increase_patience is None:
        increase_patience = patience + 1
    scale = 1.0
    best = math.inf if mode == "min" else -math.inf
    num_bad = 0
    cooldown_left = 0
    good = 0
    ever_reduced = False
    pending: list[float] = []
    out = []
    for v in values:
        pending.append(float(v))
        if len(pending) == accumulation_steps:
            cur = sum(pending) / len(pending)
            pending = []
            if threshold_mode == "rel":
                margin = threshold * abs(best) if math.isfinite(best) else 0.0
            else:
                margin = threshold
            better = cur < best - margin if mode == "min" else cur > best + margin
            if better:
                best = cur
                num_bad = 0
            else:
                num_bad += 1
            in_cooldown = cooldown_left > 0
            if in_cooldown:
                cooldown_left -= 1
                num_bad = 0
            if num_bad > patience:
                new = max(scale * factor, min_scale)
                if scale - new > eps:
                    scale = new
                    ever_reduced = True
                cooldown_left = cooldown
                num_bad = 0
            if increase_factor is not None:
                good = good + 1 if (better and not in_cooldown) else 0
                if ever_reduced and good >= increase_patience:
                    scale = max(scale, min(scale * increase_factor, max_scale))
                    good = 0
            if trace is not None:
                trace.append((best, num_bad, cooldown_left))
        out.append(scale)
    return np.asarray(out, np.float64)


def assert_scales(actual: Any, expected: np.ndarray, context: str) -> None:
    """Asserts lrjax's float32 scales equal the float64 reference, step by step.

    The bound at a step is ``(2 * k + 2) * 2**-24`` relative, ``k`` the number of
    times the reference scale has changed so far: each change is one float32
    multiply by a float32-rounded factor (two roundings), plus the rounding of
    ``min_scale`` / ``max_scale``. That is ~1e-6 after 7 changes. A zero scale
    must be exactly zero.

    Args:
      actual: lrjax's scales, one per update.
      expected: the reference's.
      context: printed on failure (the configuration).
    """
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    assert a.shape == e.shape, (a.shape, e.shape, context)
    changes = np.concatenate([[0], np.cumsum(e[1:] != e[:-1])]) + (e[0] != 1.0)
    tol = (2 * changes + 2) * U32 * np.abs(e)
    bad = ~(np.abs(a - e) <= tol)
    if bad.any():
        i = int(np.argmax(bad))
        raise AssertionError(
            f"update {i}: lrjax scale {a[i]!r} vs reference {e[i]!r} "
            f"({int(bad.sum())} bad updates); {context}"
        )


# ------------------------------------------------------------------- lrjax drivers

HPARAMS = ("factor", "patience", "cooldown", "threshold", "min_scale", "eps")
INT_HPARAMS = ("patience", "cooldown", "accumulation_steps", "increase_patience")


def stack_hparams(cfgs: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, jax.Array]:
    """The numeric hyperparameters of ``cfgs`` as arrays with a leading config axis."""
    return {
        k: jnp.asarray([c[k] for c in cfgs], jnp.int32 if k in INT_HPARAMS else jnp.float32)
        for k in names
    }


@functools.partial(jax.jit, static_argnames=("mode", "threshold_mode"))
def chain_scales(
    hp: dict[str, jax.Array], values: jax.Array, *, mode: str, threshold_mode: str
) -> jax.Array:
    """Scales revealed by ``optax.chain(optax.sgd(1.0), reduce_on_plateau(...))``.

    The transform is built inside ``jax.vmap`` (its hyperparameters are tracers)
    and driven by ``update(grads, state, params, value=v)`` in a ``lax.scan``;
    with unit gradients and ``sgd(1.0)`` the update is ``-scale``.

    Args:
      hp: hyperparameters, each with a leading config axis ``C``.
      values: ``[C, N]`` monitored values.
      mode: static ``mode``.
      threshold_mode: static ``threshold_mode``.

    Returns:
      ``[C, N]`` scales after each update (read from the update's magnitude).
    """

    def one(hp: dict[str, jax.Array], vals: jax.Array) -> jax.Array:
        tx = optax.chain(
            optax.sgd(1.0), reduce_on_plateau(mode=mode, threshold_mode=threshold_mode, **hp)
        )
        params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
        grads = jax.tree.map(jnp.ones_like, params)

        def body(state: Any, v: jax.Array) -> tuple[Any, jax.Array]:
            updates, state = tx.update(grads, state, params, value=v)
            return state, -updates["w"][1]

        return jax.lax.scan(body, tx.init(params), vals)[1]

    return jax.vmap(one)(hp, values)


def run_grouped(
    cases: Sequence[tuple[dict[str, Any], np.ndarray]], names: Sequence[str]
) -> list[np.ndarray]:
    """Runs every case through :func:`chain_scales`, one call per (mode, threshold_mode).

    Args:
      cases: (config, values) pairs of equal length.
      names: the hyperparameters to pass as arrays.

    Returns:
      lrjax's scales per case, in the order of ``cases``.
    """
    out: list[np.ndarray | None] = [None] * len(cases)
    for mode in ("min", "max"):
        for tm in ("rel", "abs"):
            idx = [
                i
                for i, (c, _) in enumerate(cases)
                if c["mode"] == mode and c["threshold_mode"] == tm
            ]
            if not idx:
                continue
            hp = stack_hparams([cases[i][0] for i in idx], names)
            vals = jnp.asarray(np.stack([cases[i][1] for i in idx]), jnp.float32)
            scales = np.asarray(chain_scales(hp, vals, mode=mode, threshold_mode=tm))
            for row, i in enumerate(idx):
                out[i] = scales[row]
    return out  # type: ignore[return-value]


@functools.partial(jax.jit, static_argnames=("mode", "threshold_mode"))
def host_step(
    hp: dict[str, jax.Array], state: ReduceOnPlateauState, value: jax.Array, **static: str
) -> ReduceOnPlateauState:
    """One jitted host-form update, the transform built from traced hyperparameters."""
    return reduce_on_plateau(**static, **hp).update(state, value)


def host_scales(cfg: dict[str, Any], values: Sequence[float], *, jit: bool = False) -> list[float]:
    """Scales from the host form ``s = tx.update(s, value)``.

    Args:
      cfg: lrjax keyword arguments (Python numbers).
      values: the values, one update each.
      jit: step with the jitted :func:`host_step` (hyperparameters as arrays, one
        compilation per structure) instead of eagerly with Python arguments.

    Returns:
      ``state.scale`` after each update.
    """
    tx = reduce_on_plateau(**cfg)
    state = tx.init()
    static = {k: cfg[k] for k in ("mode", "threshold_mode") if k in cfg}
    hp = {k: v for k, v in cfg.items() if k not in static}
    hp = {k: jnp.asarray(v, jnp.int32 if k in INT_HPARAMS else jnp.float32) for k, v in hp.items()}
    out = []
    for v in values:
        if jit:
            state = host_step(hp, state, jnp.float32(v), **static)
        else:
            state = tx.update(state, float(v))
        out.append(float(state.scale))
    return out


# ----------------------------------------------------------------------------- tests


def test_cases_cover_the_brief() -> None:
    """The random cases span both modes, both threshold modes and every kind."""
    assert len(CASES) >= 50
    combos = {(c["mode"], c["threshold_mode"]) for c, _ in CASES}
    assert combos == {("min", "rel"), ("min", "abs"), ("max", "rel"), ("max", "abs")}
    assert any(np.all(v < 0) for _, v in CASES)
    assert any(np.all(v == v[0]) for _, v in CASES)
    # both oracles are used, in "rel" mode too
    torch_rel = [torch_rule_applies(v, c) for c, v in CASES if c["threshold_mode"] == "rel"]
    assert 8 <= sum(torch_rel) <= len(torch_rel) - 8


@pytest.fixture(scope="module")
def torch_reference() -> list[np.ndarray]:
    """The oracle's scale after every check, for every case of :data:`CASES`.

    torch's lr wherever torch's rule is lrjax's, the Python reference otherwise
    (a negative best in ``"rel"`` mode); see :func:`oracle_scales`.
    """
    return [oracle_scales(v, c) for c, v in CASES]


def test_optax_chain_under_jit_matches_torch(torch_reference: list[np.ndarray]) -> None:
    """All cases: the jitted, vmapped Optax form equals the oracle after every check."""
    got = run_grouped(CASES, HPARAMS)
    reductions = 0
    for (cfg, values), scales, expected in zip(CASES, got, torch_reference):
        assert_scales(scales, expected, f"{cfg}, values={values.tolist()}")
        reductions += int(np.sum(expected[1:] != expected[:-1]))
    assert reductions > 3 * len(CASES)  # the cases do exercise reductions


def test_host_form_matches_torch(torch_reference: list[np.ndarray]) -> None:
    """The host form ``s = tx.update(s, v)`` with Python arguments: eager, then jitted.

    Against the oracle: torch, or the Python reference where the best is negative.
    """
    for k, ((cfg, values), expected) in enumerate(zip(CASES[:10], torch_reference[:10])):
        assert_scales(host_scales(cfg, values[:40]), expected[:40], f"eager; {cfg}")
        if k < 3:
            assert_scales(host_scales(cfg, values, jit=True), expected, f"jit; {cfg}")


def test_per_call_jit_update_with_python_arguments(torch_reference: list[np.ndarray]) -> None:
    """``jax.jit(tx.update)`` of the chain, called once per step, equals the oracle."""
    for cfg, values in CASES[10:13]:
        tx = optax.chain(optax.sgd(1.0), reduce_on_plateau(**cfg))
        params = jnp.zeros(2)
        update = jax.jit(tx.update)
        state = tx.init(params)
        got = []
        for v in values:
            updates, state = update(jnp.ones(2), state, params, value=jnp.float32(v))
            got.append(-float(updates[0]))
        assert_scales(got, oracle_scales(values, cfg), str(cfg))
    del torch_reference


def test_state_fields_track_torch() -> None:
    """``best``, ``num_bad`` and ``cooldown_counter`` mirror torch's attributes.

    On the cases where torch's rule is lrjax's (``"abs"`` mode, or no negative
    value), ``rel`` ones included: there lrjax is bit-compatible with torch.
    """
    usable = [(c, v) for c, v in CASES if torch_rule_applies(v, c)]
    picked = [(c, v) for c, v in usable if c["threshold_mode"] == "rel"][:5]
    picked += [(c, v) for c, v in usable if c["threshold_mode"] == "abs"][:5]
    assert len(picked) == 10
    for cfg, values in picked:
        param = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([param], lr=1.0)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            **{k: cfg[k] for k in ("mode", "factor", "patience", "threshold", "cooldown", "eps")},
            threshold_mode=cfg["threshold_mode"],
            min_lr=cfg["min_scale"],
        )
        static = {k: cfg[k] for k in ("mode", "threshold_mode")}
        hp = stack_hparams([cfg], HPARAMS)
        hp = {k: x[0] for k, x in hp.items()}
        state = reduce_on_plateau(**cfg).init()
        for i, v in enumerate(values[:30]):
            sched.step(float(v))
            state = host_step(hp, state, jnp.float32(v), **static)
            assert float(state.best) == np.float32(sched.best), (i, cfg)
            assert int(state.num_bad) == sched.num_bad_epochs, (i, cfg)
            assert int(state.cooldown_counter) == sched.cooldown_counter, (i, cfg)
            assert int(state.num_checks) == i + 1


def test_accumulation_steps_check_the_mean() -> None:
    """``accumulation_steps=k`` equals torch stepping once on each mean of k values."""
    cases = []
    for i, (cfg, values) in enumerate(make_cases(seed=11, count=24, n=60)):
        cases.append(({**cfg, "accumulation_steps": int(2 + i % 4)}, values))
    got = run_grouped(cases, (*HPARAMS, "accumulation_steps"))
    for (cfg, values), scales in zip(cases, got):
        k = cfg["accumulation_steps"]
        n_checks = len(values) // k
        means = values[: n_checks * k].reshape(n_checks, k).mean(axis=1)
        per_check = oracle_scales(means, {**cfg, "accumulation_steps": 1})
        # after update t, (t + 1) // k checks have run
        done = (np.arange(len(values)) + 1) // k
        expected = np.concatenate([[1.0], per_check])[done]
        assert_scales(scales, expected, f"{cfg}, values={values.tolist()}")
    # the host form with Python arguments, for two of them
    for cfg, values in cases[:2]:
        k = cfg["accumulation_steps"]
        means = values[: (30 // k) * k].reshape(-1, k).mean(axis=1)
        per_check = oracle_scales(means, {**cfg, "accumulation_steps": 1})
        expected = np.concatenate([[1.0], per_check])[(np.arange(30) + 1) // k]
        assert_scales(host_scales(cfg, values[:30], jit=True), expected, str(cfg))


def test_negative_values_use_the_margin_threshold_times_abs_best() -> None:
    """Negative losses, random settings: lrjax equals the reference's corrected rule.

    The reference's relative margin is ``threshold * |best|``. On these sequences
    torch's literal ``best * (1 - threshold)`` must give a different answer in some
    cases, or the test would not tell the two rules apart.
    """
    rng = np.random.default_rng(3)
    n = 40
    t = np.arange(n)
    sequences = [
        np.full(n, -1.0),  # torch: always "better" in rel mode, never reduces
        np.full(n, -1.7),
        np.where(t < 5, -2.0 + 0.1 * t, -1.5),  # rises then flat
        -3.0 + np.round(rng.normal(0, 0.05, n) * 256) / 256,
        -0.01 * (1 + np.round(rng.random(n) * 256) / 256),
        np.round(np.linspace(-1.0, -0.2, n) * 256) / 256,  # worsening in "min"
    ]
    cases = []
    for i in range(32):
        mode = ("min", "max")[i % 2]
        tm = ("rel", "abs")[(i // 2) % 2]
        cfg = sample_config(rng, mode, tm)
        cfg["factor"] = 0.5
        cfg["threshold"] = 0.01 if tm == "rel" else cfg["threshold"]
        cases.append((cfg, np.asarray(sequences[i % len(sequences)], np.float64)))
    got = run_grouped(cases, HPARAMS)
    reduced = differs_from_torch = 0
    for (cfg, values), scales in zip(cases, got):
        expected = reference_scales(values, **cfg)
        assert_scales(scales, expected, f"{cfg}, values={values.tolist()}")
        assert_scales(host_scales(cfg, values, jit=True), expected, f"host; {cfg}")
        reduced += bool(expected[-1] < 1.0)
        differs_from_torch += not np.array_equal(expected, torch_scales(values, cfg))
    assert reduced >= 8 and differs_from_torch >= 4


def test_flat_negative_loss_is_cut_after_patience_unlike_torch_and_optax() -> None:
    """Issue 22's case: -1.7 for 12 checks, ``patience=3``: cuts at checks 5 and 9.

    Closed form: check 1 sets ``best``; each later check is bad (``-1.7`` is not
    below ``-1.7 - 1e-4 * 1.7``), so the 4th bad one (check 5) cuts, the count
    restarts, and check 9 cuts again. torch (``-1.7 < -1.7 * (1 - 1e-4)`` holds:
    every check "improves") and ``optax.contrib.reduce_on_plateau`` never cut.
    """
    values = [-1.7] * 12
    cfg = {"mode": "min", "factor": 0.1, "patience": 3, "threshold": 1e-4}
    cfg |= {"threshold_mode": "rel", "cooldown": 0, "min_scale": 0.0, "eps": 1e-8}
    expected = np.asarray([1.0] * 4 + [0.1] * 4 + [0.01] * 4)
    np.testing.assert_allclose(reference_scales(values, **cfg), expected, rtol=1e-15)
    assert_scales(host_scales(cfg, values), expected, "eager")
    assert_scales(host_scales(cfg, values, jit=True), expected, "jit")
    assert_scales(run_grouped([(cfg, np.asarray(values))], HPARAMS)[0], expected, "chain")
    # the two libraries with the literal rule: no cut at all
    assert torch_scales(values, cfg).tolist() == [1.0] * 12
    assert optax_contrib_scales(values, patience=4, factor=0.1) == [1.0] * 12
    # the same for a flat negative reward in "max" mode
    up = {**cfg, "mode": "max"}
    assert_scales(host_scales(up, values, jit=True), expected, "max")
    assert torch_scales(values, up).tolist() == [1.0] * 12


#: Negative sequences of 24 checks: flat, worsening, improving by less than the
#: 1% margin per check (a cut until the gains add up), and improving by more.
NEGATIVE_SHAPES = {
    "flat": np.full(24, -1.7),
    "worsening": np.round(np.linspace(-2.0, -1.0, 24) * 256) / 256,
    "improving_slowly": -1.0 - 0.004 * np.arange(24),
    "improving": -(1.05 ** np.arange(24)),
    "noisy_flat": -1.7 + np.round(np.random.default_rng(8).normal(0, 0.004, 24) * 1024) / 1024,
}

#: Settings for them: cooldown, ``min_scale`` and the increase-again rule.
NEGATIVE_SETTINGS = (
    {"patience": 2, "cooldown": 0},
    {"patience": 1, "cooldown": 2, "min_scale": 0.02},
    {"patience": 0, "cooldown": 1, "increase_factor": 3.0, "increase_patience": 2},
    {"patience": 1, "cooldown": 0, "increase_factor": 1.5, "increase_patience": 1},
)


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("threshold_mode", ["rel", "abs"])
def test_negative_shapes_with_cooldown_and_increase_match_the_reference(
    mode: str, threshold_mode: str
) -> None:
    """Every shape x setting, Optax chain under jit and vmap, and the host form.

    In ``"max"`` mode the shapes are negated again so that "worsening" still
    worsens (a reward falling toward ``-2``) and "flat" stays negative.
    """
    names = (*HPARAMS, "increase_factor", "increase_patience", "max_scale")
    base = {"factor": 0.5, "threshold": 0.01}
    base |= {"eps": 1e-8, "min_scale": 0.0, "mode": mode, "threshold_mode": threshold_mode}
    cases = []
    for shape in NEGATIVE_SHAPES.values():
        values = shape if mode == "min" else -3.5 - shape  # still negative, mirrored
        for setting in NEGATIVE_SETTINGS:
            cfg = {**base, "increase_factor": 1.0 + 1e-6, "increase_patience": 10**6}
            cfg |= {"max_scale": 1.0, **setting}
            cases.append((cfg, np.asarray(values, np.float64)))
    assert all(np.all(v < 0) for _, v in cases)
    got = run_grouped(cases, names)
    cuts = rises = 0
    for k, ((cfg, values), scales) in enumerate(zip(cases, got)):
        expected = reference_scales(values, **cfg)
        assert_scales(scales, expected, f"{cfg}, values={values.tolist()}")
        if k % 3 == 0:
            assert_scales(host_scales(cfg, values), expected, f"eager host; {cfg}")
        cuts += int(np.sum(expected[1:] < expected[:-1]))
        rises += int(np.sum(expected[1:] > expected[:-1]))
    assert cuts >= 20 and rises >= 2  # the cases exercise both rules
    # a flat negative value is always cut, in both modes and threshold modes
    flat = [reference_scales(v, **c)[-1] for c, v in cases[: len(NEGATIVE_SETTINGS)]]
    assert max(flat) < 1.0


def test_negative_best_state_fields_follow_the_reference() -> None:
    """``best``, ``num_bad`` and ``cooldown_counter`` after each check, negative values."""
    cfg = {"mode": "min", "factor": 0.5, "patience": 1, "threshold": 0.01, "cooldown": 2}
    for values in NEGATIVE_SHAPES.values():
        trace: list[tuple[float, int, int]] = []
        reference_scales(values, **cfg, trace=trace)
        tx = reduce_on_plateau(**cfg)
        state = tx.init()
        for v, (best, num_bad, cooldown_left) in zip(values, trace):
            state = tx.update(state, float(v))
            assert float(state.best) == np.float32(best)  # best is a value fed in
            assert (int(state.num_bad), int(state.cooldown_counter)) == (num_bad, cooldown_left)


def test_nan_values_are_never_better() -> None:
    """A NaN value counts as a bad check, as in torch (``nan < best`` is False)."""
    rng = np.random.default_rng(5)
    cases = []
    for cfg, values in CASES[:16]:
        values = values.copy()
        values[rng.random(len(values)) < 0.15] = np.nan
        cases.append((cfg, values))
    for (cfg, values), scales in zip(cases, run_grouped(cases, HPARAMS)):
        assert_scales(scales, oracle_scales(values, cfg), f"{cfg}, values={values.tolist()}")


def optax_contrib_scales(values: Sequence[float], patience: int, factor: float) -> list[float]:
    """Scales of ``optax.contrib.reduce_on_plateau`` (rtol 1e-4, no cooldown)."""
    tx = optax.contrib.reduce_on_plateau(factor=factor, patience=patience, rtol=1e-4, atol=0.0)
    params = jnp.zeros(1)

    def body(state: Any, v: jax.Array) -> tuple[Any, jax.Array]:
        _, state = tx.update(params, state, params, value=v)
        return state, state.scale

    scales = jax.jit(lambda vals: jax.lax.scan(body, tx.init(params), vals)[1])
    return np.asarray(scales(jnp.asarray(values, jnp.float32))).tolist()


def test_positive_losses_still_equal_torch_exactly() -> None:
    """Positive values, ``"rel"`` mode, both modes: lrjax is torch, as before the fix.

    The scale after every check within one float32 rounding per change, and
    ``best`` bit for bit torch's float64 ``best`` rounded to float32 (it is a
    value fed in), so the comparisons ``value < best * (1 - threshold)`` agree.
    """
    rng = np.random.default_rng(23)
    cases = []
    for i in range(16):
        mode = ("min", "max")[i % 2]
        cfg = sample_config(rng, mode, "rel")
        values = make_sequence(rng, ("loss_like", "noisy", "steps", "constant")[i % 4], 50)
        values = np.abs(values) + 2.0**-8 * (i % 3)  # positive; ties kept on the grid
        cases.append((cfg, values))
    got = run_grouped(cases, HPARAMS)
    reductions = 0
    for (cfg, values), scales in zip(cases, got):
        expected = torch_scales(values, cfg)
        assert_scales(scales, expected, f"{cfg}, values={values.tolist()}")
        reductions += int(np.sum(expected[1:] != expected[:-1]))
    assert reductions >= 16


def test_mode_max_mirrors_min_on_negated_values() -> None:
    """``mode="max"`` on ``-x`` equals ``mode="min"`` on ``x``, in both threshold modes.

    With the margin ``threshold * |best|`` the relative rule is symmetric too
    (torch's is not: its ``"max"`` rule on a negative best mirrors nothing).
    Bit for bit: the mirrored comparisons round the same magnitudes.
    """
    lo_cases = [({**c, "mode": "min"}, v) for c, v in CASES[:24]]
    hi_cases = [({**c, "mode": "max"}, -v) for c, v in lo_cases]
    assert {c["threshold_mode"] for c, _ in lo_cases} == {"rel", "abs"}
    for (cfg, values), lo, hi in zip(
        lo_cases, run_grouped(lo_cases, HPARAMS), run_grouped(hi_cases, HPARAMS)
    ):
        np.testing.assert_array_equal(lo, hi)
        assert_scales(lo, oracle_scales(values, cfg), str(cfg))


def test_reference_agrees_with_torch() -> None:
    """The Python reference is torch wherever torch's rule is the documented one."""
    picked = [(c, v) for c, v in CASES if torch_rule_applies(v, c)]
    assert len(picked) >= 30
    for cfg, values in picked:
        np.testing.assert_array_equal(reference_scales(values, **cfg), torch_scales(values, cfg))


def make_increase_cases(seed: int, count: int) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Cases with ``increase_factor`` on sequences that plateau, then improve again.

    Args:
      seed: the RNG seed.
      count: how many cases.

    Returns:
      (config, values) pairs of length 80.
    """
    rng = np.random.default_rng(seed)
    n = 80
    cases = []
    for i in range(count):
        mode = ("min", "max")[i % 2]
        tm = ("rel", "abs")[(i // 2) % 2]
        cfg = sample_config(rng, mode, tm)
        cfg["factor"] = float(rng.uniform(0.2, 0.9))
        cfg["patience"] = int(rng.integers(0, 3))
        cfg["cooldown"] = int(rng.integers(0, 3))
        cfg["increase_factor"] = float(rng.uniform(1.05, 3.0))
        cfg["increase_patience"] = int(rng.integers(1, 4))
        cfg["max_scale"] = float(rng.choice([1.0, 1.0, 0.3, 0.7, 2.0, 5.0]))
        # alternate plateaus and descents, with noise
        segments = []
        level = float(rng.normal(0, 1))
        while sum(len(s) for s in segments) < n:
            m = int(rng.integers(2, 12))
            if rng.random() < 0.5:
                segments.append(np.full(m, level) + rng.normal(0, 0.01, m) * (rng.random() < 0.5))
            else:
                step = rng.uniform(0.05, 0.5)
                segments.append(level - step * (1 + np.arange(m)))
                level -= step * m
        values = np.round(np.concatenate(segments)[:n] * 256) / 256
        if mode == "max":
            values = -values
        cases.append((cfg, values))
    return cases


def test_increase_again_matches_reference() -> None:
    """``increase_factor``/``increase_patience``/``max_scale`` vs the Python reference."""
    names = (*HPARAMS, "increase_factor", "increase_patience", "max_scale")
    cases = make_increase_cases(seed=99, count=40)
    cases.append(({**cases[0][0], "max_scale": math.inf}, cases[0][1]))
    got = run_grouped(cases, names)
    increases = 0
    for (cfg, values), scales in zip(cases, got):
        expected = reference_scales(values, **cfg)
        assert_scales(scales, expected, f"{cfg}, values={values.tolist()}")
        increases += int(np.sum(expected[1:] > expected[:-1]))
    assert increases > len(cases)  # the cases do increase the scale

    # host form with Python arguments, and the default increase_patience = patience + 1
    for cfg, values in cases[:3]:
        cfg = dict(cfg)
        del cfg["increase_patience"]
        expected = reference_scales(values, **cfg)
        assert_scales(host_scales(cfg, values, jit=True), expected, str(cfg))


def test_increase_again_small_example() -> None:
    """A hand-checkable run: reduce after 2 bad checks, grow after 2 improving ones."""
    cfg = {"factor": 0.5, "patience": 1, "threshold": 0.0, "increase_factor": 4.0}
    cfg["increase_patience"] = 2
    values = [1.0, 1.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    expected = reference_scales(values, **cfg)
    # 1, 1, 0.5 (2nd bad), 0.5, 1.0 (2 improving, capped at max_scale 1), 1, 1, ...
    np.testing.assert_array_equal(expected, [1, 1, 0.5, 0.5, 1, 1, 1, 1, 1])
    assert_scales(host_scales(cfg, values), expected, str(cfg))


@pytest.mark.parametrize(
    ("increase_patience", "closed_form"),
    [(2, [1, 0.5, 0.5, 0.5, 1.5, 1.5, 4.5, 4.5]), (None, [1, 0.5, 0.5, 1.5, 4.5, 10, 10, 10])],
    ids=["patience-2", "default-patience-plus-one"],
)
def test_increase_again_closed_form_with_cooldown(
    increase_patience: int | None, closed_form: list[float]
) -> None:
    """Written out by hand from the docstring, not from the reference: ``patience=0``
    cuts to 0.5 at the 2nd check (starting a 1-check cooldown); the improving 3rd
    check is in that cooldown and does not count; from the 4th on, every
    ``increase_patience``-th improving check (default ``patience + 1`` = 1)
    multiplies the scale by 3, capped at ``max_scale=10``."""
    cfg = {"factor": 0.5, "patience": 0, "cooldown": 1, "threshold": 0.0}
    cfg.update(increase_factor=3.0, max_scale=10.0)
    if increase_patience is not None:
        cfg["increase_patience"] = increase_patience
    values = [1.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    # 0.5 * 3 and 1.5 * 3 are exact in float32
    np.testing.assert_array_equal(host_scales(cfg, values), closed_form)
    np.testing.assert_array_equal(host_scales(cfg, values, jit=True), closed_form)


def test_state_is_a_namedtuple_of_scalar_arrays() -> None:
    """Host ``init`` gives the documented state."""
    tx = reduce_on_plateau()
    state = tx.init()
    assert isinstance(state, ReduceOnPlateauState)
    assert all(jnp.shape(x) == () for x in state)
    assert float(state.scale) == 1.0 and float(state.best) == math.inf
    assert float(reduce_on_plateau(mode="max").init().best) == -math.inf


def test_jit_and_eager_updates_agree_bit_for_bit_across_a_run(
    torch_reference: list[np.ndarray],
) -> None:
    """``jax.jit(tx.update)`` and the eager ``tx.update`` give the same state at every step.

    Cases with a cooldown where torch cuts the rate at least twice, so every
    branch (bad count, reduction, cooldown) runs. Both runs are compared leaf by
    leaf, bit for bit (the same float32 operations in the same order: no
    tolerance), the updates too, and the scale against torch after every step.
    The host form ``state = tx.update(state, value)`` is checked the same way.
    """
    picked = [
        i
        for i, ((cfg, _), ref) in enumerate(zip(CASES, torch_reference))
        if cfg["cooldown"] > 0 and np.sum(ref[1:] != ref[:-1]) >= 2
    ][:3]
    assert len(picked) == 3
    for i in picked:
        cfg, values = CASES[i]
        tx = optax.chain(optax.sgd(1.0), reduce_on_plateau(**cfg))
        params = {"w": jnp.zeros(2)}
        grads = {"w": jnp.ones(2)}
        update = jax.jit(tx.update)
        eager_state = jit_state = tx.init(params)
        host = reduce_on_plateau(**cfg)
        host_update = jax.jit(host.update)
        host_eager = host_jit = host.init()
        scales = []
        for v in values:
            u_eager, eager_state = tx.update(grads, eager_state, params, value=jnp.float32(v))
            u_jit, jit_state = update(grads, jit_state, params, value=jnp.float32(v))
            assert_trees_identical(jit_state, eager_state)
            assert_trees_identical(u_jit, u_eager)
            host_eager = host.update(host_eager, jnp.float32(v))
            host_jit = host_update(host_jit, jnp.float32(v))
            assert_trees_identical(host_jit, host_eager)
            np.testing.assert_array_equal(
                np.asarray(host_jit.scale), np.asarray(jit_state[1].scale)
            )
            scales.append(-float(u_jit["w"][0]))
        assert_scales(scales, torch_reference[i], str(cfg))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"factor": 1.0}, "factor"),
        ({"factor": 1.5}, "factor"),
        ({"factor": -0.1}, "factor"),
        ({"factor": float("nan")}, "factor"),
        ({"patience": -1}, "patience"),
        ({"patience": 1.5}, "patience"),
        ({"threshold": -1e-4}, "threshold"),
        ({"threshold_mode": "relative"}, "threshold_mode"),
        ({"mode": "auto"}, "mode"),
        ({"mode": "minimum"}, "mode"),
        ({"cooldown": -1}, "cooldown"),
        ({"cooldown": 0.5}, "cooldown"),
        ({"min_scale": -0.1}, "min_scale"),
        ({"accumulation_steps": 0}, "accumulation_steps"),
        ({"accumulation_steps": 2.5}, "accumulation_steps"),
        ({"eps": -1.0}, "eps"),
        ({"max_scale": 0.0}, "max_scale"),
        ({"increase_factor": 1.0}, "increase_factor"),
        ({"increase_factor": 0.5}, "increase_factor"),
        ({"increase_patience": 3}, "increase_patience"),
        ({"increase_factor": 2.0, "increase_patience": 0}, "increase_patience"),
        ({"increase_factor": 2.0, "increase_patience": -2}, "increase_patience"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], name: str) -> None:
    """Each out-of-range argument raises ValueError naming the parameter."""
    with pytest.raises(ValueError, match=name):
        reduce_on_plateau(**kwargs)


def test_torch_rejects_what_lrjax_rejects() -> None:
    """Sanity of the shared contract: torch also refuses ``factor >= 1`` and bad modes."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    for kwargs in ({"factor": 1.0}, {"mode": "auto"}, {"threshold_mode": "relative"}):
        with pytest.raises(ValueError):
            torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
        with pytest.raises(ValueError):
            reduce_on_plateau(**kwargs)
