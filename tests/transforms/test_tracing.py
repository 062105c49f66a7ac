"""Every lrjax transform under jit, vmap, inject_hyperparams and checkpoints.

For each transform (reduce_on_plateau, bold_driver, scale_by_layer, adabound)
one training step is written once, with the hyperparameter as an argument:

- eager with a Python-number hyperparameter is the reference;
- ``jax.jit`` of the same step (the transform inside ``optax.chain``) matches it;
- ``jax.jit(jax.vmap(step))`` over 8 hyperparameter values, the transform built
  inside the vmapped function, matches a Python loop over the 8 values;
- ``optax.inject_hyperparams(transform)`` matches the plain transform, also
  when the injected value is changed mid-run;
- the jitted step compiles once for any hyperparameter values passed as arrays.

tests/test_checkpoints.py already round-trips a single state of each transform
through flax.serialization and Orbax; here only what it lacks: the batched
(vmapped) states and inject_hyperparams-wrapped states with a changed value.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization
from oracles import assert_trees_identical

import lrjax

T, K, B = 16, 7, 8  # steps, checkpoint after K, batch of hyperparameter values

PARAMS = {
    "a": jnp.array([1.0, -2.0, 0.5]),
    "b": {"w": jnp.array([[0.3, 1.5], [-1.0, 2.0]]), "v": jnp.array([0.1, -0.4])},
}
TARGET = jax.tree.map(lambda p: 0.3 * jnp.ones_like(p), PARAMS)
# The monitored values fed to plateau / bold driver: ups and downs, so that they act.
VALUES = np.random.default_rng(0).uniform(0.5, 1.5, T).astype(np.float32)


def loss_fn(p: Any) -> jax.Array:
    return sum(jnp.sum((x - y) ** 2 * jnp.arange(1, x.size + 1).reshape(x.shape))
               for x, y in zip(jax.tree.leaves(p), jax.tree.leaves(TARGET)))  # fmt: skip


def make(kind: str, hp: Any) -> optax.GradientTransformation:
    """The transform under test in a chain, with its hyperparameter ``hp``."""
    if kind == "reduce_on_plateau":
        return optax.chain(
            optax.sgd(0.05), lrjax.reduce_on_plateau(factor=hp, patience=1, cooldown=1)
        )
    if kind == "bold_driver":
        return optax.chain(optax.sgd(0.05), lrjax.bold_driver(increase=1.0 + hp, decrease=hp))
    if kind == "scale_by_layer":
        mults = {"^a$": hp, "^b/w$": lrjax.linear(hp, 1.0, 10)}
        return optax.chain(optax.adam(0.05), lrjax.scale_by_layer(mults, default=0.5))
    if kind == "adabound":
        return lrjax.adabound(0.05, final_lr=hp, gamma=0.1)
    raise AssertionError(kind)


KINDS = ["reduce_on_plateau", "bold_driver", "scale_by_layer", "adabound"]
TAKES_VALUE = {"reduce_on_plateau", "bold_driver"}
HPARAMS = {
    "reduce_on_plateau": np.linspace(0.1, 0.8, B),
    "bold_driver": np.linspace(0.3, 0.9, B),
    "scale_by_layer": np.linspace(0.1, 2.0, B),
    "adabound": np.geomspace(0.01, 1.0, B),
}
TRACES: dict[str, int] = {}


def step_fn(
    kind: str, tx_of: Callable[[Any], optax.GradientTransformation], counter: str | None = None
):
    """``(params, state, hp, value) -> (params, state)`` for the transform ``tx_of(hp)``.

    Each trace adds one to ``TRACES[counter]`` (the body runs once per trace, not per call).
    """

    def step(params, state, hp, value):
        if counter is not None:
            TRACES[counter] = TRACES.get(counter, 0) + 1
        tx = tx_of(hp)
        grads = jax.grad(loss_fn)(params)
        extra = {"value": value} if kind in TAKES_VALUE else {}
        updates, state = tx.update(grads, state, params, **extra)
        return optax.apply_updates(params, updates), state

    return step


@functools.cache
def jitted(kind: str):
    return jax.jit(step_fn(kind, functools.partial(make, kind)))


@functools.cache
def vmapped(kind: str):
    return jax.jit(jax.vmap(step_fn(kind, functools.partial(make, kind)),
                            in_axes=(0, 0, 0, None)))  # fmt: skip


def run(step, params, state, hp, start: int = 0, stop: int = T):
    for t in range(start, stop):
        params, state = step(params, state, hp, VALUES[t])
    return params, state


@functools.cache
def eager_reference(kind: str, i: int) -> tuple[Any, Any]:
    """The eager run with the i-th hyperparameter as a Python float."""
    hp = float(HPARAMS[kind][i])
    tx = make(kind, hp)
    step = step_fn(kind, lambda _: tx)
    return run(step, PARAMS, tx.init(PARAMS), hp)


def batched_init(kind: str) -> tuple[Any, Any]:
    hps = jnp.asarray(HPARAMS[kind], jnp.float32)
    params = jax.tree.map(lambda p: jnp.broadcast_to(p, (B, *p.shape)), PARAMS)
    return params, jax.vmap(lambda hp: make(kind, hp).init(PARAMS))(hps)


def assert_trees_close(a: Any, b: Any) -> None:
    """Equal up to float32 rounding (eager and jitted XLA round differently)."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=1e-6)


def differs(a: Any, b: Any) -> bool:
    """Some leaf differs by more than rounding."""
    return any(
        not np.allclose(np.asarray(x), np.asarray(y), rtol=1e-4)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


@pytest.mark.parametrize("kind", KINDS)
def test_chain_under_jit_matches_eager(kind: str) -> None:
    hp = float(HPARAMS[kind][3])
    params, state = eager_reference(kind, 3)
    got = run(jitted(kind), PARAMS, make(kind, hp).init(PARAMS), jnp.float32(hp))
    assert_trees_close(got, (params, state))
    # the transform acted: the result depends on the hyperparameter
    assert differs(params, eager_reference(kind, 5)[0])


@pytest.mark.parametrize("kind", KINDS)
def test_vmap_over_hyperparameters_matches_python_loop(kind: str) -> None:
    params, state = batched_init(kind)
    hps = jnp.asarray(HPARAMS[kind], jnp.float32)
    params, state = run(vmapped(kind), params, state, hps)
    for i in range(B):
        want = eager_reference(kind, i)
        assert_trees_close(jax.tree.map(lambda x, i=i: x[i], (params, state)), want)
    if kind in TAKES_VALUE:  # the scales differ across the batch: the transform acted
        scales = np.asarray(state[1].scale)
        assert len(np.unique(scales)) > 1 and np.all(scales != 1.0)


# kind: (inject factory, its fixed kwargs, the injected name, first and second value)
INJECTED: dict[str, tuple[Callable, dict[str, Any], str, float, float]] = {
    "reduce_on_plateau": (
        lrjax.reduce_on_plateau,
        dict(patience=1, cooldown=1),
        "factor",
        0.5,
        0.2,
    ),
    "bold_driver": (lrjax.bold_driver, dict(increase=1.2), "decrease", 0.6, 0.9),
    "scale_by_layer": (
        lrjax.scale_by_layer,
        dict(multipliers={"^a$": 0.3, "^b/w$": 2.0}),
        "default",
        0.5,
        1.5,
    ),
    "adabound": (lrjax.adabound, dict(learning_rate=0.05, gamma=0.1), "final_lr", 0.1, 0.02),
}


def injected_chain(kind: str, tx: optax.GradientTransformation) -> optax.GradientTransformation:
    if kind == "adabound":
        return tx
    return optax.chain(optax.adam(0.05) if kind == "scale_by_layer" else optax.sgd(0.05), tx)


@pytest.mark.parametrize("kind", KINDS)
def test_inject_hyperparams_and_changing_the_value(kind: str) -> None:
    """inject_hyperparams(transform) equals the plain transform, also when the injected
    value changes after K steps (the plain reference switches transforms there)."""
    factory, fixed, name, v1, v2 = INJECTED[kind]
    tx = injected_chain(kind, optax.inject_hyperparams(factory)(**fixed, **{name: v1}))
    step = jax.jit(step_fn(kind, lambda _: tx, "inject-" + kind))
    state = tx.init(PARAMS)
    inject_index = 0 if kind == "adabound" else 1
    inject_state = lambda s: s if kind == "adabound" else s[inject_index]

    def set_value(s, v):
        inner = inject_state(s)
        hp = dict(inner.hyperparams, **{name: jnp.asarray(v, inner.hyperparams[name].dtype)})
        inner = inner._replace(hyperparams=hp)
        return inner if kind == "adabound" else (s[0], inner)

    p, s = run(step, PARAMS, state, None, 0, K)
    traces = TRACES["inject-" + kind]
    p, s = run(step, p, set_value(s, v2), None, K, T)
    assert TRACES["inject-" + kind] == traces  # a new value is not a new program
    assert float(inject_state(s).hyperparams[name]) == pytest.approx(v2)

    plain = [injected_chain(kind, factory(**fixed, **{name: v})) for v in (v1, v2)]
    rp, rs = PARAMS, plain[0].init(PARAMS)
    for t in range(T):
        tx_t = plain[0] if t < K else plain[1]
        extra = {"value": VALUES[t]} if kind in TAKES_VALUE else {}
        updates, rs = tx_t.update(jax.grad(loss_fn)(rp), rs, rp, **extra)
        rp = optax.apply_updates(rp, updates)
    assert_trees_close(p, rp)
    inner = inject_state(s).inner_state
    assert_trees_close(inner, rs if kind == "adabound" else rs[1])
    # and the switch mattered
    p_only_v1, _ = run(step, PARAMS, state, None)
    assert differs(p_only_v1, p)


@pytest.mark.parametrize("kind", KINDS)
def test_jitted_step_compiles_once_across_hyperparameters(kind: str) -> None:
    step = jax.jit(step_fn(kind, functools.partial(make, kind), "once-" + kind))
    results = []
    for hp in HPARAMS[kind][:3]:
        state = make(kind, float(hp)).init(PARAMS)
        results.append(run(step, PARAMS, state, jnp.asarray(hp, jnp.float32))[0])
    assert TRACES["once-" + kind] == 1
    assert differs(results[0], results[2])


@pytest.mark.parametrize("kind", KINDS)
def test_batched_state_roundtrip_and_bit_exact_resume(kind: str) -> None:
    """The state of 8 vmapped copies survives flax.serialization; resuming is bit-exact."""
    params0, state0 = batched_init(kind)
    hps = jnp.asarray(HPARAMS[kind], jnp.float32)
    step = vmapped(kind)
    full = run(step, params0, state0, hps)
    mid = run(step, params0, state0, hps, 0, K)
    restored = serialization.from_bytes((params0, state0), serialization.to_bytes(mid))
    assert_trees_identical(restored, mid)
    assert_trees_identical(run(step, *restored, hps, K, T), full)


@pytest.mark.parametrize("kind", KINDS)
def test_injected_state_roundtrip_keeps_changed_value(kind: str) -> None:
    """A changed injected hyperparameter is part of the checkpoint; resuming is bit-exact."""
    factory, fixed, name, v1, v2 = INJECTED[kind]
    tx = injected_chain(kind, optax.inject_hyperparams(factory)(**fixed, **{name: v1}))
    step = jax.jit(step_fn(kind, lambda _: tx, "inject-" + kind))
    template = (PARAMS, tx.init(PARAMS))
    p, s = run(step, *template, None, 0, K)
    inner = s if kind == "adabound" else s[1]
    inner.hyperparams[name] = jnp.asarray(v2, inner.hyperparams[name].dtype)
    restored = serialization.from_bytes(template, serialization.to_bytes((p, s)))
    assert_trees_identical(restored, (p, s))
    r_inner = restored[1] if kind == "adabound" else restored[1][1]
    assert float(r_inner.hyperparams[name]) == pytest.approx(v2)
    assert_trees_identical(run(step, *restored, None, K, T), run(step, p, s, None, K, T))


def test_vmap_over_two_plateau_hyperparameters_including_integers() -> None:
    """factor and patience (an integer) vmapped together; each copy equals its own run."""
    factors = jnp.asarray(np.linspace(0.2, 0.9, B), jnp.float32)
    patiences = jnp.asarray([0, 1, 2, 3, 0, 1, 2, 3], jnp.int32)
    make_tx = lambda f, n: lrjax.reduce_on_plateau(factor=f, patience=n)

    def scales(f, n):
        tx = make_tx(f, n)

        def body(s, v):
            s = tx.update(s, v)  # host-side form: update(state, value)
            return s, s.scale

        return jax.lax.scan(body, tx.init(), jnp.asarray(VALUES))[1]

    got = jax.jit(jax.vmap(scales))(factors, patiences)
    for i in range(B):
        tx = make_tx(float(factors[i]), int(patiences[i]))
        s, want = tx.init(), []
        for v in VALUES:
            s = tx.update(s, float(v))
            want.append(float(s.scale))
        np.testing.assert_allclose(np.asarray(got[i]), want, rtol=1e-6)
    assert len({tuple(np.asarray(r).round(6)) for r in got}) == B
