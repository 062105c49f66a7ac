"""Optimizer states with lrjax inside survive checkpoints; resuming is bit-exact.

For every subject (Optax optimizers driven by lrjax schedules, and each lrjax
transform and callback state), training runs 12 steps uninterrupted, and
again 5 steps, a checkpoint of ``{params, opt_state}`` written and read back
(``flax.serialization.to_bytes/from_bytes`` against a fresh template, or an
Orbax ``StandardCheckpointer`` in ``tmp_path`` against the abstract tree), then
7 more steps. The restored tree must equal the saved one (structure, types,
dtypes, bits) and the resumed run the uninterrupted one, bit for bit. The same
jitted step function serves both runs.

The range test's training carry is internal (``lrjax._engine._kernel.Carry`` is never
returned), so there is no range-test carry to checkpoint; its results are
NumPy arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization
from oracles import assert_trees_identical

import lrjax
from lrjax import transforms

ocp = pytest.importorskip("orbax.checkpoint")

N, K = 12, 5  # total steps, checkpoint after K


def problem():
    x = jax.random.normal(jax.random.PRNGKey(0), (N, 16, 4))
    y = jnp.sin(x.sum(-1))
    params = {
        "hidden": {"kernel": jax.random.normal(jax.random.PRNGKey(1), (4, 8)) * 0.5},
        "out": {"kernel": jax.random.normal(jax.random.PRNGKey(2), (8,)) * 0.5},
    }

    def loss_fn(p, b):
        return jnp.mean((jnp.tanh(b[0] @ p["hidden"]["kernel"]) @ p["out"]["kernel"] - b[1]) ** 2)

    return loss_fn, params, (x, y)


class Subject(NamedTuple):
    make: Callable[[], optax.GradientTransformation]
    takes_value: bool = False  # update(..., value=loss)


def _optax_subjects() -> dict[str, Subject]:
    return {
        "adam(one_cycle)": Subject(lambda: optax.adam(lrjax.one_cycle(0.05, N))),
        "chain(clip, adamw(warmup(cosine)))": Subject(
            lambda: optax.chain(
                optax.clip_by_global_norm(1.0),
                optax.adamw(lrjax.warmup(lrjax.cosine(0.05, N), 3), weight_decay=1e-2),
            )
        ),
        "inject_hyperparams(sgd)(cosine_restarts)": Subject(
            lambda: optax.inject_hyperparams(optax.sgd)(
                learning_rate=lrjax.cosine_restarts(0.1, 4, period_mult=2), momentum=0.9
            )
        ),
        "inject_hyperparams(sgd)(wsd, one_cycle_momentum)": Subject(
            lambda: optax.inject_hyperparams(optax.sgd)(
                learning_rate=lrjax.wsd(0.1, N, warmup_steps=2),
                momentum=lrjax.one_cycle_momentum(N),
            )
        ),
    }


def _transform_subjects() -> dict[str, Subject]:
    """lrjax's own transforms."""
    out: dict[str, Subject] = {}
    rop = transforms.reduce_on_plateau
    out["chain(adam, reduce_on_plateau)"] = Subject(
        lambda: optax.chain(optax.adam(0.05), rop(factor=0.5, patience=1, cooldown=1)),
        takes_value=True,
    )
    out["reduce_on_plateau(accumulation, increase)"] = Subject(
        lambda: optax.chain(
            optax.sgd(0.05),
            rop(factor=0.5, patience=0, accumulation_steps=2, increase_factor=1.5,
                increase_patience=1),
        ),
        takes_value=True,
    )  # fmt: skip
    out["chain(sgd, bold_driver)"] = Subject(
        lambda: optax.chain(optax.sgd(0.05), transforms.bold_driver()), takes_value=True
    )
    out["chain(adam, scale_by_layer)"] = Subject(
        lambda: optax.chain(
            optax.adam(0.05), transforms.scale_by_layer({"hidden": 0.1, "out": 2.0})
        )
    )
    # Base width 2 against the problem's 8: the hidden kernel [4, 8] is vector-like.
    mup_base = {"hidden": {"kernel": jnp.ones((4, 2))}, "out": {"kernel": jnp.ones((2,))}}
    out["chain(sgd, scale_by_mup)"] = Subject(
        lambda: optax.chain(optax.sgd(0.05, momentum=0.9), transforms.scale_by_mup(mup_base, "sgd"))
    )
    out["adabound"] = Subject(lambda: transforms.adabound(0.01, final_lr=0.1))
    out["adabound(amsbound, weight_decay)"] = Subject(
        lambda: transforms.adabound(0.01, amsbound=True, weight_decay=1e-3)
    )
    out["inject_hyperparams(adabound)(one_cycle)"] = Subject(
        lambda: optax.inject_hyperparams(transforms.adabound)(
            learning_rate=lrjax.one_cycle(0.05, N)
        )
    )
    return out


SUBJECTS = {**_optax_subjects(), **_transform_subjects()}


@functools.cache
def stepper(name: str):
    loss_fn, _, _ = problem()
    subject = SUBJECTS[name]
    opt = subject.make()

    @jax.jit
    def step(params, state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        extra = {"value": loss} if subject.takes_value else {}
        updates, state = opt.update(grads, state, params, **extra)
        return optax.apply_updates(params, updates), state, loss

    return opt, step


def train(step, params, state, batches, start, stop):
    losses = []
    for t in range(start, stop):
        params, state, loss = step(params, state, jax.tree.map(lambda b: b[t], batches))
        losses.append(loss)
    return params, state, losses


def flax_roundtrip(tree, template, tmp_path):
    data = serialization.to_bytes(tree)
    return serialization.from_bytes(template, data)


def orbax_roundtrip(tree, template, tmp_path):
    path = tmp_path / "ckpt"
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, tree)
    checkpointer.wait_until_finished()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    restored = checkpointer.restore(path, abstract)
    checkpointer.close()
    return restored


@pytest.mark.parametrize("backend", ["flax", "orbax"])
@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_state_roundtrip_and_bit_exact_resume(name, backend, tmp_path):
    _, params0, batches = problem()
    opt, step = stepper(name)
    state0 = opt.init(params0)

    p_full, s_full, l_full = train(step, params0, state0, batches, 0, N)

    p_mid, s_mid, l_mid = train(step, params0, state0, batches, 0, K)
    saved = {"params": p_mid, "opt_state": s_mid}
    template = {"params": params0, "opt_state": opt.init(params0)}
    roundtrip = flax_roundtrip if backend == "flax" else orbax_roundtrip
    restored = roundtrip(saved, template, tmp_path)
    assert_trees_identical(restored, saved)
    # The checkpoint holds real progress, not the initial state.
    changed = [
        not np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(jax.tree.leaves(s_mid), jax.tree.leaves(template["opt_state"]))
    ]
    assert any(changed)

    p_res, s_res, l_res = train(
        step, restored["params"], restored["opt_state"], batches, K, N
    )  # fmt: skip
    assert_trees_identical(p_res, p_full)
    assert_trees_identical(s_res, s_full)
    np.testing.assert_array_equal(np.asarray(l_mid + l_res), np.asarray(l_full))


def test_subjects_cover_the_transforms():
    covered = " ".join(SUBJECTS)
    for name in ("reduce_on_plateau", "bold_driver", "scale_by_layer", "scale_by_mup", "adabound"):
        assert name in covered


def test_stacked_schedule_survives_orbax(tmp_path):
    """A stacked (vmappable) schedule is a pytree of arrays: Orbax restores it exactly."""
    stacked = jax.tree.map(
        lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]),
        lrjax.one_cycle(0.1, 100, pct_start=0.3),
        lrjax.one_cycle(0.2, 50, pct_start=0.4),
        lrjax.one_cycle(0.05, 80, pct_start=0.2),
    )
    restored = orbax_roundtrip(stacked, stacked, tmp_path)
    assert type(restored) is type(stacked) and restored.convention == stacked.convention
    assert_trees_identical(restored, stacked)
    steps = jnp.arange(0, 120, 7)
    np.testing.assert_array_equal(
        jax.vmap(lambda s: s(steps))(restored), jax.vmap(lambda s: s(steps))(stacked)
    )
