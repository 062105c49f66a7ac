"""scale_by_layer (per-group multipliers by regex on the parameter path) and
layer_multipliers (fastai's ``even_mults``).

Expected multipliers are written out by hand per parameter; the updates come
from ``optax.chain(optax.sgd(1.0), scale_by_layer(...))`` so that each update is
``-multiplier * gradient``.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax.transforms import parameter_paths


def even_mults(start: float, stop: float, n: int) -> Any:
    """fastai.torch_core.even_mults, verbatim in behaviour."""
    if n == 1:
        return stop
    mult = stop / start
    step = mult ** (1 / (n - 1))
    return np.array([start * (step**i) for i in range(n)])


def sgd_updates(multipliers: Any, params: Any, grads: Any, default: Any = 1.0, steps: int = 1):
    """The updates of ``steps`` calls of ``chain(sgd(1), scale_by_layer(...))``."""
    tx = optax.chain(optax.sgd(1.0), lrjax.scale_by_layer(multipliers, default=default))
    state = tx.init(params)
    out = []
    for _ in range(steps):
        updates, state = tx.update(grads, state, params)
        out.append(updates)
    return out if steps > 1 else out[0]


def assert_scaled(updates: Any, grads: Any, expected: dict[str, float]) -> None:
    """``updates[path] == -expected[path] * grads[path]`` for every parameter path."""
    flat_u = dict(zip(parameter_paths(updates), jax.tree.leaves(updates)))
    flat_g = dict(zip(parameter_paths(grads), jax.tree.leaves(grads)))
    assert set(flat_u) == set(expected)
    for path, m in expected.items():
        np.testing.assert_allclose(
            np.asarray(flat_u[path]), -m * np.asarray(flat_g[path]), rtol=1e-6, err_msg=path
        )


def nested_params() -> dict[str, Any]:
    key = iter(jax.random.split(jax.random.PRNGKey(0), 8))
    r = lambda *s: jax.random.normal(next(key), s)
    return {
        "encoder": {
            "layer0": {"w": r(3, 4), "b": r(4)},
            "layer1": {"w": r(4, 4), "b": r(4)},
        },
        "body": [{"w": r(4, 2)}, {"w": r(2, 2)}],
        "head": {"w": r(2, 1)},
    }


def test_nested_dict_and_lists_default() -> None:
    params = nested_params()
    grads = jax.tree.map(lambda p: p * 0.5 + 1.0, params)
    updates = sgd_updates(
        {"^encoder/layer0/": 0.1, "^encoder/": 0.5, "^body/1/": 3.0}, params, grads, default=2.0
    )
    assert_scaled(
        updates,
        grads,
        {
            "encoder/layer0/w": 0.1,
            "encoder/layer0/b": 0.1,
            "encoder/layer1/w": 0.5,
            "encoder/layer1/b": 0.5,
            "body/0/w": 2.0,
            "body/1/w": 3.0,
            "head/w": 2.0,
        },
    )


def test_first_match_wins_in_given_order() -> None:
    """The broad pattern first shadows the specific one; pairs keep their order too."""
    params = nested_params()
    grads = jax.tree.map(jnp.ones_like, params)
    want = {p: 1.0 for p in parameter_paths(params)}
    want.update({p: 0.5 for p in want if p.startswith("encoder/")})
    for multipliers in (
        {"encoder": 0.5, "encoder/layer0": 0.1},
        [("encoder", 0.5), ("encoder/layer0", 0.1)],
        (("encoder", 0.5), ("layer0", 0.1)),
    ):
        assert_scaled(sgd_updates(multipliers, params, grads), grads, want)
    # re.search: unanchored patterns match anywhere in the path.
    want = {p: (0.25 if p.endswith("/b") else 1.0) for p in parameter_paths(params)}
    assert_scaled(sgd_updates([("b$", 0.25)], params, grads), grads, want)


def test_flax_linen_params() -> None:
    nn = pytest.importorskip("flax.linen")

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.tanh(nn.Dense(8)(x))
            x = nn.tanh(nn.Dense(8)(x))
            return nn.Dense(1)(x)

    variables = MLP().init(jax.random.PRNGKey(0), jnp.ones((2, 3)))
    assert sorted(variables) == ["params"]
    grads = jax.tree.map(lambda p: jnp.full_like(p, 2.0), variables)
    updates = sgd_updates(
        {r"^params/Dense_0/": 0.01, r"Dense_1/bias$": 0.0, r"Dense_1": 0.1}, variables, grads
    )
    assert_scaled(
        updates,
        grads,
        {
            "params/Dense_0/kernel": 0.01,
            "params/Dense_0/bias": 0.01,
            "params/Dense_1/kernel": 0.1,
            "params/Dense_1/bias": 0.0,
            "params/Dense_2/kernel": 1.0,
            "params/Dense_2/bias": 1.0,
        },
    )


def test_flax_nnx_state_and_optimizer() -> None:
    nnx = pytest.importorskip("flax.nnx")

    class Model(nnx.Module):
        def __init__(self, rngs: Any) -> None:
            self.layers = nnx.List([nnx.Linear(3, 4, rngs=rngs), nnx.Linear(4, 4, rngs=rngs)])
            self.head = nnx.Linear(4, 1, rngs=rngs)

        def __call__(self, x):
            for layer in self.layers:
                x = jnp.tanh(layer(x))
            return self.head(x)

    model = Model(nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    assert parameter_paths(state) == [
        "head/bias",
        "head/kernel",
        "layers/0/bias",
        "layers/0/kernel",
        "layers/1/bias",
        "layers/1/kernel",
    ]
    mults = {"^layers/0/": 0.1, "^layers/1/kernel$": 0.5}
    want = {"layers/0/bias": 0.1, "layers/0/kernel": 0.1, "layers/1/kernel": 0.5}
    want |= {"layers/1/bias": 3.0, "head/bias": 3.0, "head/kernel": 3.0}

    grads = jax.tree.map(lambda p: p + 1.0, state)
    assert_scaled(sgd_updates(mults, state, grads, default=3.0), grads, want)

    # Through nnx.Optimizer: new params = old - multiplier * grad.
    tx = optax.chain(optax.sgd(1.0), lrjax.scale_by_layer(mults, default=3.0))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    before = {p: np.asarray(v) for p, v in zip(parameter_paths(state), jax.tree.leaves(state))}
    grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
    g = dict(zip(parameter_paths(grads), jax.tree.leaves(grads)))
    optimizer.update(model, grads)
    after = nnx.state(model, nnx.Param)
    for path, value in zip(parameter_paths(after), jax.tree.leaves(after)):
        np.testing.assert_allclose(
            np.asarray(value), before[path] - want[path] * np.asarray(g[path]), rtol=1e-6
        )


def test_schedule_multipliers_at_update_count() -> None:
    """A schedule multiplier is evaluated at the update count: 0 on the first update."""
    params = nested_params()
    grads = jax.tree.map(jnp.ones_like, params)
    thaw = lrjax.linear(0.0, 1.0, 4)  # 0, .25, .5, .75, 1, 1, ...
    default = lambda t: 2.0 ** (-jnp.asarray(t, jnp.float32))  # a plain callable works too
    steps = sgd_updates({"^head/": thaw, "^encoder/": 0.3}, params, grads, default, steps=7)
    for t, updates in enumerate(steps):
        thawed = min(t / 4, 1.0)
        want = {p: (0.3 if p.startswith("encoder/") else 2.0**-t) for p in parameter_paths(params)}
        want["head/w"] = thawed
        assert_scaled(updates, grads, want)


def test_jitted_update_and_count() -> None:
    params = nested_params()
    grads = jax.tree.map(jnp.ones_like, params)
    tx = optax.chain(optax.sgd(1.0), lrjax.scale_by_layer({"head": lrjax.linear(1.0, 0.0, 2)}))
    update = jax.jit(tx.update)
    state = tx.init(params)
    heads = []
    for _ in range(4):
        updates, state = update(grads, state, params)
        heads.append(float(updates["head"]["w"][0, 0]))
    assert heads == [-1.0, -0.5, 0.0, 0.0]
    assert int(state[1].count) == 4


def test_unmatched_pattern_lists_paths() -> None:
    params = nested_params()
    tx = lrjax.scale_by_layer({"^encoder/": 0.1, "^decoder/": 0.2, "nothing_here": 1.0})
    with pytest.raises(ValueError) as info:
        tx.init(params)
    msg = str(info.value)
    assert "^decoder/" in msg and "nothing_here" in msg
    assert "'^encoder/'" not in msg.split("match no parameter")[0]
    for path in parameter_paths(params):
        assert path in msg


@pytest.mark.parametrize("pattern", ["dense[", "(unclosed", "*star", "a{2,1}"])
def test_invalid_regex(pattern: str) -> None:
    with pytest.raises(re.error):
        re.compile(pattern)  # the reference agrees it is invalid
    with pytest.raises(ValueError, match=re.escape(repr(pattern))):
        lrjax.scale_by_layer({pattern: 0.5})


@pytest.mark.parametrize(
    ("n", "lo", "hi"),
    [(1, 1e-4, 1e-2), (2, 1e-4, 1e-2), (3, 0.01, 1.0), (5, 1e-5, 1e-3), (7, 0.3, 0.02),
     (12, 2e-6, 3e-3), (4, 0.5, 0.5)],
)  # fmt: skip
def test_layer_multipliers_match_fastai(n: int, lo: float, hi: float) -> None:
    got = lrjax.layer_multipliers(n, lo, hi)
    assert isinstance(got, tuple) and len(got) == n
    assert all(isinstance(m, float) for m in got)
    np.testing.assert_allclose(got, np.atleast_1d(even_mults(lo, hi, n)), rtol=1e-12)
    assert got[-1] == pytest.approx(hi, rel=1e-12)


def test_layer_multipliers_arrays_and_tracers() -> None:
    lo = np.array([1e-4, 1e-3, 3e-2, 0.5])
    hi = np.array([1e-2, 1e-3, 1e-1, 2.0])
    want = np.stack([even_mults(a, b, 5) for a, b in zip(lo, hi)])

    got = lrjax.layer_multipliers(5, jnp.asarray(lo[0]), jnp.asarray(hi[0]))
    assert isinstance(got, jax.Array) and got.shape == (5,)
    np.testing.assert_allclose(got, want[0], rtol=1e-5)

    fn = jax.jit(jax.vmap(lambda a, b: lrjax.layer_multipliers(5, a, b)))
    np.testing.assert_allclose(fn(jnp.asarray(lo), jnp.asarray(hi)), want, rtol=1e-5)

    one = jax.jit(lambda a, b: lrjax.layer_multipliers(1, a, b))(0.1, 0.7)
    assert one.shape == (1,)
    np.testing.assert_allclose(one, [0.7], rtol=1e-6)


def test_layer_multipliers_with_scale_by_layer_discriminative() -> None:
    """fastai's ``lr_max=slice(lo, hi)``: group i trains at ``lr * even_mults(...)[i]``."""
    params = nested_params()
    grads = jax.tree.map(jnp.ones_like, params)
    patterns = ["^encoder/layer0/", "^encoder/layer1/", "^body/", "^head/"]
    mults = lrjax.layer_multipliers(len(patterns), 1e-3, 1e-1)
    updates = sgd_updates(list(zip(patterns, mults)), params, grads)
    spread = even_mults(1e-3, 1e-1, 4)
    want = {}
    for p in parameter_paths(params):
        group = next(i for i, pat in enumerate(patterns) if re.search(pat, p))
        want[p] = float(spread[group])
    assert_scaled(updates, grads, want)
