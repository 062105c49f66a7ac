"""lrjax.adabound against the reference ``adabound.AdaBound`` (PyTorch), step by step.

A small tanh MLP is trained for 200 steps on random minibatches, once with
``lrjax.adabound`` (JAX computes its own gradients) and once with the reference
optimizer (torch autograd), from the same initial parameters on the same
batches. The parameters after every step must agree: to 1e-5 relative in
float32 (both frameworks in float32) and to 1e-12 in float64 (torch float64,
JAX under ``jax.enable_x64``). Learning-rate schedules are compared with the
reference driven by ``torch.optim.lr_scheduler.LambdaLR`` whose factors are
written out independently here (not read from lrjax).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax

torch = pytest.importorskip("torch")
adabound_ref = pytest.importorskip("adabound")

STEPS = 200
N_DATA, BATCH, D_IN, D_HID, D_OUT = 64, 16, 5, 8, 3
SHAPES = {"w1": (D_IN, D_HID), "b1": (D_HID,), "w2": (D_HID, D_OUT), "b2": (D_OUT,)}


def problem(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Float64 initial params, data and the minibatch indices of every step."""
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s) / math.sqrt(s[0]) for k, s in SHAPES.items()}
    x = rng.normal(size=(N_DATA, D_IN))
    y = np.sin(x @ rng.normal(size=(D_IN, D_OUT)))
    idx = np.stack([rng.choice(N_DATA, BATCH, replace=False) for _ in range(STEPS)])
    return params, x, y, idx


def forward(p: dict[str, Any], x: Any, tanh: Callable[[Any], Any]) -> Any:
    return tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]


def run_torch(
    cfg: dict[str, Any],
    dtype: Any,
    lr_lambda: Callable[[int], float] | None = None,
    seed: int = 0,
    optimizer: Any = None,
) -> dict[str, np.ndarray]:
    """The reference trajectory: ``{name: [STEPS, *shape]}`` after every step."""
    p0, x, y, idx = problem(seed)
    params = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in p0.items()}
    xt, yt = torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype)
    opt = (optimizer or adabound_ref.AdaBound)(list(params.values()), **cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda) if lr_lambda else None
    traj: dict[str, list[np.ndarray]] = {k: [] for k in params}
    for t in range(STEPS):
        opt.zero_grad()
        b = torch.as_tensor(idx[t])
        loss = ((forward(params, xt[b], torch.tanh) - yt[b]) ** 2).mean()
        loss.backward()
        with warnings.catch_warnings():  # the reference uses torch's deprecated add overloads
            warnings.simplefilter("ignore", UserWarning)
            opt.step()
        if sched is not None:
            sched.step()
        for k, v in params.items():
            traj[k].append(v.detach().numpy().copy())
    return {k: np.stack(v) for k, v in traj.items()}


def run_jax(tx: optax.GradientTransformation, seed: int = 0) -> dict[str, np.ndarray]:
    """lrjax's trajectory, one jitted scan; float64 when called under ``enable_x64``."""
    p0, x, y, idx = problem(seed)
    dtype = jnp.zeros((), float).dtype
    params = {k: jnp.asarray(v, dtype) for k, v in p0.items()}
    xj, yj = jnp.asarray(x, dtype), jnp.asarray(y, dtype)

    def loss_fn(p, b):
        return jnp.mean((forward(p, xj[b], jnp.tanh) - yj[b]) ** 2)

    @jax.jit
    def train(params, idx):
        def step(carry, b):
            params, state = carry
            grads = jax.grad(loss_fn)(params, b)
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), params

        return jax.lax.scan(step, (params, tx.init(params)), idx)[1]

    return {k: np.asarray(v) for k, v in train(params, jnp.asarray(idx)).items()}


def assert_trajectories_close(got: dict, want: dict, rtol: float) -> None:
    """Every step, every tensor: ``|got - want| <= rtol * (|want| + max|want|)``."""
    for k in SHAPES:
        g, w = got[k].astype(np.float64), want[k].astype(np.float64)
        assert g.shape == w.shape == (STEPS, *SHAPES[k])
        scale = np.max(np.abs(w), axis=tuple(range(1, w.ndim)), keepdims=True)
        err = np.abs(g - w) / (np.abs(w) + scale)
        worst = np.unravel_index(np.argmax(err), err.shape)
        assert err.max() <= rtol, f"{k}: relative error {err.max():.3g} at step {worst[0] + 1}"


# (lrjax kwargs, reference kwargs): the same optimizer in each library's spelling.
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "defaults": ({}, {}),
    "tight_bounds": (
        dict(learning_rate=1e-2, final_lr=0.05, gamma=0.1),
        dict(lr=1e-2, final_lr=0.05, gamma=0.1),
    ),
    "betas_eps": (
        dict(learning_rate=3e-3, final_lr=0.3, gamma=0.02, b1=0.8, b2=0.99, eps=1e-6),
        dict(lr=3e-3, final_lr=0.3, gamma=0.02, betas=(0.8, 0.99), eps=1e-6),
    ),
    "weight_decay": (
        dict(learning_rate=1e-2, final_lr=0.1, gamma=0.05, weight_decay=1e-2),
        dict(lr=1e-2, final_lr=0.1, gamma=0.05, weight_decay=1e-2),
    ),
    "amsbound": (
        dict(learning_rate=1e-2, final_lr=0.05, gamma=0.05, b2=0.9, amsbound=True),
        dict(lr=1e-2, final_lr=0.05, gamma=0.05, betas=(0.9, 0.9), amsbound=True),
    ),
    "amsbound_weight_decay": (
        dict(learning_rate=5e-3, final_lr=0.2, gamma=0.01, weight_decay=5e-3, amsbound=True),
        dict(lr=5e-3, final_lr=0.2, gamma=0.01, weight_decay=5e-3, amsbound=True),
    ),
}

# name: (lrjax schedule, reference LambdaLR factor written out here, base rate)
SCHEDULES: dict[str, tuple[Callable[[], Any], Callable[[int], float], float]] = {
    "exponential": (lambda: lrjax.exponential(2e-2, 0.99), lambda t: 0.99**t, 2e-2),
    "cosine": (
        lambda: lrjax.cosine(2e-2, STEPS, end_value=1e-3),
        lambda t: (1e-3 + (2e-2 - 1e-3) * 0.5 * (1 + math.cos(math.pi * t / STEPS))) / 2e-2,
        2e-2,
    ),
}
SCHEDULE_HPARAMS = dict(final_lr=0.1, gamma=0.05, weight_decay=1e-3)


@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_matches_reference(name: str, precision: str) -> None:
    ours, ref = CONFIGS[name]
    if precision == "float32":
        got = run_jax(lrjax.adabound(**ours))
        want = run_torch(ref, torch.float32)
        assert_trajectories_close(got, want, 1e-5)
    else:
        with jax.enable_x64(True):
            got = run_jax(lrjax.adabound(**ours))
        assert all(v.dtype == np.float64 for v in got.values())
        want = run_torch(ref, torch.float64)
        assert_trajectories_close(got, want, 1e-12)


@pytest.mark.parametrize("inject", [False, True], ids=["schedule", "inject_hyperparams"])
@pytest.mark.parametrize("amsbound", [False, True], ids=["adabound", "amsbound"])
@pytest.mark.parametrize("sched_name", sorted(SCHEDULES))
def test_schedule_matches_reference_lambda_lr(sched_name: str, amsbound: bool, inject: bool):
    """A schedule is the reference driven by LambdaLR; bounds follow ``lr / base_lr``."""
    make, factor, base = SCHEDULES[sched_name]
    hp = dict(SCHEDULE_HPARAMS, amsbound=amsbound)
    factory = optax.inject_hyperparams(lrjax.adabound) if inject else lrjax.adabound
    with jax.enable_x64(True):
        got = run_jax(factory(learning_rate=make(), **hp))
    want = run_torch(dict(hp, lr=base), torch.float64, lr_lambda=factor)
    assert_trajectories_close(got, want, 1e-12)


def test_schedule_float32() -> None:
    make, factor, base = SCHEDULES["cosine"]
    got = run_jax(
        optax.inject_hyperparams(lrjax.adabound)(learning_rate=make(), **SCHEDULE_HPARAMS)
    )
    want = run_torch(dict(SCHEDULE_HPARAMS, lr=base), torch.float32, lr_lambda=factor)
    assert_trajectories_close(got, want, 1e-5)


def test_configs_exercise_the_bounds_and_amsbound() -> None:
    """The comparisons are not vacuous: the bounds clip (the reference differs from
    torch's Adam) and AMSBound's running maximum matters (it differs from AdaBound)."""

    def rel(a: dict, b: dict) -> float:
        return max(float(np.max(np.abs(a[k] - b[k]) / np.max(np.abs(b[k])))) for k in a)

    for name in ("defaults", "tight_bounds", "weight_decay"):
        ref = CONFIGS[name][1]
        adam = dict(lr=ref.get("lr", 1e-3), weight_decay=ref.get("weight_decay", 0.0))
        bounded = run_torch(ref, torch.float64)
        unbounded = run_torch(adam, torch.float64, optimizer=torch.optim.Adam)
        assert rel(bounded, unbounded) > 1e-2, name
    for name in ("amsbound", "amsbound_weight_decay"):
        ref = CONFIGS[name][1]
        ams = run_torch(ref, torch.float64)
        plain = run_torch(dict(ref, amsbound=False), torch.float64)
        assert rel(ams, plain) > 1e-3, name


def test_warmup_from_zero_uses_final_lr_unscaled() -> None:
    """With a rate of 0 at step 0, ``final_lr / base_lr`` is undefined: the docstring says
    ``final_lr`` is used unscaled. The first step (Adam step 0) is then the lower bound:
    ``-final_lr * (1 - 1/(gamma + 1)) * (1 - b1) * g``."""
    final_lr, gamma, b1 = 0.1, 0.05, 0.9
    tx = lrjax.adabound(lrjax.warmup(lrjax.constant(1e-2), 10), final_lr=final_lr, gamma=gamma)
    g = {"w": jnp.array([0.5, -2.0, 3.0])}
    state = tx.init(g)
    updates, state = tx.update(g, state, g)
    want = -final_lr * (1 - 1 / (gamma + 1)) * (1 - b1) * np.array([0.5, -2.0, 3.0])
    np.testing.assert_allclose(np.asarray(updates["w"]), want, rtol=1e-6)
    for _ in range(20):
        updates, state = tx.update(g, state, g)
        assert np.all(np.isfinite(np.asarray(updates["w"])))


def test_params_needed_only_for_weight_decay() -> None:
    """Without weight decay ``update(g, state)`` works; a traced weight_decay (the injected
    default 0.0 under jit) cannot be known to be 0, so params are required with a clear
    message, and passing them gives the plain adabound numbers."""
    g = {"w": jnp.array([0.5, -2.0, 3.0])}
    plain = lrjax.adabound(1e-2, final_lr=0.05)
    want = plain.update(g, plain.init(g))[0]
    tx = optax.inject_hyperparams(lrjax.adabound)(learning_rate=1e-2, final_lr=0.05)
    state = tx.init(g)
    np.testing.assert_allclose(tx.update(g, state)[0]["w"], want["w"], rtol=1e-6)
    with pytest.raises(ValueError, match=r"needs params.*inject_hyperparams"):
        jax.jit(tx.update)(g, state)
    got = jax.jit(tx.update)(g, state, g)[0]
    np.testing.assert_allclose(got["w"], want["w"], rtol=1e-6)
    with pytest.raises(ValueError, match="needs params"):
        wd = lrjax.adabound(1e-2, weight_decay=1e-3)
        wd.update(g, wd.init(g))
