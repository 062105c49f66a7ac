"""get_learning_rate / get_hyperparam on many optimizer layouts.

Where the optimizer is plain SGD (no momentum), the rate in force is measured
from the update itself: ``rate = -update / grad`` of the latest update. Elsewhere
the expected rate is written out from the schedule's closed form, or from
PyTorch's ``ReduceLROnPlateau`` fed the same losses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax

PARAMS = {"a": jnp.array([1.0, -2.0, 0.5]), "b": {"w": jnp.array([[0.3, 1.5], [-1.0, 2.0]])}}
GRADS = {"a": jnp.array([0.5, 1.0, -2.0]), "b": {"w": jnp.array([[1.0, -0.25], [4.0, 0.5]])}}
LABELS = {"a": "head", "b": {"w": "body"}}


def cosine_closed_form(init: float, steps: int, t: int) -> float:
    """optax.cosine_decay_schedule(init, steps) at step t, written out."""
    return init * 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps))


COS_INIT, COS_STEPS = 0.2, 20
cos_rate = lambda t: cosine_closed_form(COS_INIT, COS_STEPS, t)
make_cos = lambda: lrjax.cosine(COS_INIT, COS_STEPS)


def run(
    tx: optax.GradientTransformation,
    n: int,
    losses: list[float] | None = None,
    grads: Callable[[int], Any] | None = None,
) -> tuple[Any, list[Any]]:
    """``n`` updates; returns the final state and every update."""
    state = tx.init(PARAMS)
    all_updates = []
    for t in range(n):
        extra = {} if losses is None else {"value": losses[t]}
        g = GRADS if grads is None else grads(t)
        updates, state = tx.update(g, state, PARAMS, **extra)
        all_updates.append(updates)
    return state, all_updates


def measured(updates: Any, grads: Any = GRADS, subtree: str | None = None) -> float:
    """The SGD rate an update applied: ``-u / g``, the same for every entry."""
    if subtree is not None:
        updates, grads = updates[subtree], grads[subtree]
    ratios = np.concatenate(
        [
            -np.ravel(u) / np.ravel(g)
            for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(grads))
        ]
    )
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-6)
    return float(ratios[0])


def test_inject_hyperparams_adam_with_schedule() -> None:
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=make_cos())
    state = tx.init(PARAMS)
    assert float(lrjax.get_learning_rate(state)) == pytest.approx(cos_rate(0), rel=1e-6)
    for n in (1, 7, 13):
        state, _ = run(tx, n)
        assert float(lrjax.get_learning_rate(state)) == pytest.approx(cos_rate(n - 1), rel=1e-5)
    # A recorded rate wins over base_lr.
    assert float(lrjax.get_learning_rate(state, base_lr=123.0)) == pytest.approx(
        cos_rate(12), rel=1e-5
    )


def test_inject_hyperparams_sgd_schedule_matches_applied_update() -> None:
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=make_cos())
    state, updates = run(tx, 9)
    rate = float(lrjax.get_learning_rate(state))
    assert rate == pytest.approx(measured(updates[-1]), rel=1e-6)
    assert rate == pytest.approx(cos_rate(8), rel=1e-5)


def torch_plateau_rates(losses: list[float], lr: float, **kwargs: Any) -> list[float]:
    """torch's rate after each ``scheduler.step(loss)``."""
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    rates = []
    for loss in losses:
        opt.step()
        sched.step(loss)
        rates.append(opt.param_groups[0]["lr"])
    return rates


PLATEAU_LOSSES = [1.0, 0.9, 0.95, 0.93, 0.97, 0.8, 0.85, 0.86, 0.9, 0.91, 0.7]


@pytest.mark.parametrize("n", [3, 5, 8, 11])
def test_chain_inject_sgd_reduce_on_plateau(n: int) -> None:
    """rate * scale after reductions, equal to torch and to the applied update."""
    tx = optax.chain(
        optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
        lrjax.reduce_on_plateau(factor=0.5, patience=1),
    )
    state, updates = run(tx, n, PLATEAU_LOSSES)
    want = torch_plateau_rates(PLATEAU_LOSSES[:n], 0.1, factor=0.5, patience=1)[-1]
    rate = float(lrjax.get_learning_rate(state))
    assert rate == pytest.approx(want, rel=1e-6)
    assert rate == pytest.approx(measured(updates[-1]), rel=1e-6)
    if n >= 5:
        assert want < 0.1  # a reduction happened


def test_chain_adam_bold_driver_with_base_lr() -> None:
    tx = optax.chain(optax.adam(1e-3), lrjax.bold_driver(increase=1.1, decrease=0.5))
    state, _ = run(tx, 5, [1.0, 0.8, 0.6, 0.9, 0.95])
    # first check: reference; 0.8 < 1: x1.1; 0.6: x1.1; 0.9 > 0.6: x0.5; 0.95 > 0.9: x0.5
    assert float(lrjax.get_learning_rate(state, base_lr=1e-3)) == pytest.approx(
        1e-3 * 1.1**2 * 0.25, rel=1e-6
    )
    with pytest.raises(ValueError, match="base_lr") as info:
        lrjax.get_learning_rate(state)
    assert "scale" in str(info.value)  # it says where the scale factors are


def test_chain_sgd_bold_driver_matches_update() -> None:
    tx = optax.chain(optax.sgd(0.05), lrjax.bold_driver(increase=1.2, decrease=0.7))
    state, updates = run(tx, 4, [1.0, 0.9, 1.1, 0.5])
    rate = float(lrjax.get_learning_rate(state, base_lr=0.05))
    assert rate == pytest.approx(measured(updates[-1]), rel=1e-6)
    assert rate == pytest.approx(0.05 * 1.2 * 0.7 * 1.2, rel=1e-6)


@pytest.mark.parametrize("n", [0, 1, 6, 25])
def test_adam_schedule_with_base_lr_schedule(n: int) -> None:
    """``optax.adam(schedule)`` records no rate: base_lr=schedule at the latest update's step."""
    sched = make_cos()
    tx = optax.adam(sched)
    state, _ = run(tx, n)
    want = cos_rate(max(n - 1, 0))
    assert float(lrjax.get_learning_rate(state, base_lr=sched)) == pytest.approx(want, rel=1e-5)
    # the same for SGD, where the applied rate can be measured
    state, updates = run(optax.sgd(sched), n)
    rate = float(lrjax.get_learning_rate(state, base_lr=sched))
    assert rate == pytest.approx(want, rel=1e-5, abs=1e-9)
    if n:
        assert rate == pytest.approx(measured(updates[-1]), rel=1e-5, abs=1e-9)


def test_base_lr_schedule_without_step_count_is_an_error() -> None:
    state = optax.adam(1e-3).init(PARAMS)
    with pytest.raises(ValueError, match="step count"):
        lrjax.get_learning_rate(state, base_lr=make_cos())


def test_multi_transform_two_injected_rates() -> None:
    tx = optax.multi_transform(
        {
            "head": optax.inject_hyperparams(optax.sgd)(learning_rate=0.3),
            "body": optax.inject_hyperparams(optax.sgd)(learning_rate=make_cos()),
        },
        LABELS,
    )
    state, updates = run(tx, 6)
    got = lrjax.get_learning_rate(state)
    assert isinstance(got, dict) and set(got) == {"head", "body"}
    assert float(got["head"]) == pytest.approx(0.3, rel=1e-6)
    assert float(got["body"]) == pytest.approx(cos_rate(5), rel=1e-5)
    assert float(got["head"]) == pytest.approx(measured(updates[-1], subtree="a"), rel=1e-6)
    assert float(got["body"]) == pytest.approx(measured(updates[-1], subtree="b"), rel=1e-6)


def test_multi_transform_plateau_in_one_branch_and_nested_labels() -> None:
    inner = optax.multi_transform(
        {
            "x": optax.chain(
                optax.inject_hyperparams(optax.sgd)(learning_rate=0.2),
                lrjax.reduce_on_plateau(factor=0.5, patience=0),
            ),
            "y": optax.inject_hyperparams(optax.sgd)(learning_rate=0.2),
        },
        {"a": "y", "b": {"w": "x"}},  # "a" is masked out here: the outer label owns it
    )
    tx = optax.multi_transform(
        {"outer_a": optax.inject_hyperparams(optax.sgd)(learning_rate=0.01), "outer_b": inner},
        {"a": "outer_a", "b": "outer_b"},
    )
    state, updates = run(tx, 3, [1.0, 2.0, 3.0])
    got = lrjax.get_learning_rate(state)
    # patience 0: the checks on 2.0 and 3.0 each halve the scale.
    want = {"outer_a": 0.01, "outer_b/x": 0.2 * 0.25, "outer_b/y": 0.2}
    assert set(got) == set(want)
    for k, v in want.items():
        assert float(got[k]) == pytest.approx(v, rel=1e-6), k
    assert float(got["outer_b/x"]) == pytest.approx(measured(updates[-1], subtree="b"), rel=1e-6)


def test_multi_transform_frozen_branch_gives_scalar() -> None:
    tx = optax.multi_transform(
        {
            "head": optax.inject_hyperparams(optax.adam)(learning_rate=make_cos()),
            "body": optax.set_to_zero(),
        },
        LABELS,
    )
    state, updates = run(tx, 4)
    got = lrjax.get_learning_rate(state)
    assert not isinstance(got, dict)
    assert float(got) == pytest.approx(cos_rate(3), rel=1e-5)
    assert not np.any(np.asarray(updates[-1]["b"]["w"]))


def test_multisteps_wrapper() -> None:
    """The inner optimizer runs every 3rd call: its rate is that of its own latest update."""
    tx = optax.MultiSteps(optax.inject_hyperparams(optax.sgd)(learning_rate=make_cos()), 3)
    state, updates = run(tx, 7)  # inner updates at calls 3 and 6
    assert float(lrjax.get_learning_rate(state)) == pytest.approx(cos_rate(1), rel=1e-5)
    assert float(lrjax.get_learning_rate(state)) == pytest.approx(measured(updates[5]), rel=1e-6)
    assert not np.any(np.asarray(updates[6]["a"]))


def test_multisteps_adam_schedule_with_base_lr() -> None:
    sched = make_cos()
    state, _ = run(optax.MultiSteps(optax.adam(sched), 2), 9)  # 4 inner updates
    assert float(lrjax.get_learning_rate(state, base_lr=sched)) == pytest.approx(
        cos_rate(3), rel=1e-5
    )


def test_apply_if_finite_wrapper() -> None:
    """A non-finite gradient skips the inner update, so the rate stays that of the last one."""
    bad = jax.tree.map(lambda g: g.at[0].set(jnp.nan) if g.ndim == 1 else g, GRADS)
    schedule_of_grads = lambda t: bad if t in (3, 4) else GRADS
    tx = optax.apply_if_finite(optax.inject_hyperparams(optax.sgd)(learning_rate=make_cos()), 5)
    state, updates = run(tx, 5, grads=schedule_of_grads)  # finite updates: calls 0, 1, 2
    assert float(lrjax.get_learning_rate(state)) == pytest.approx(cos_rate(2), rel=1e-5)
    assert float(lrjax.get_learning_rate(state)) == pytest.approx(measured(updates[2]), rel=1e-6)
    assert int(state.notfinite_count) == 2


def test_inject_hyperparams_adabound() -> None:
    tx = optax.inject_hyperparams(lrjax.adabound)(learning_rate=make_cos(), final_lr=0.05)
    state, _ = run(tx, 8)
    assert float(lrjax.get_learning_rate(state)) == pytest.approx(cos_rate(7), rel=1e-5)
    # plain adabound records its own rate
    state, _ = run(lrjax.adabound(make_cos()), 8)
    assert float(lrjax.get_learning_rate(state)) == pytest.approx(cos_rate(7), rel=1e-5)
    assert float(lrjax.get_learning_rate(lrjax.adabound(3e-3).init(PARAMS))) == pytest.approx(3e-3)


def test_optax_contrib_reduce_on_plateau_scale() -> None:
    tx = optax.chain(
        optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
        optax.contrib.reduce_on_plateau(factor=0.5, patience=1),
    )
    state, updates = run(tx, 6, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    rate = float(lrjax.get_learning_rate(state))
    assert rate < 0.1  # it reduced
    assert rate == pytest.approx(measured(updates[-1]), rel=1e-6)
    assert rate == pytest.approx(0.1 * float(state[1].scale), rel=1e-6)


def test_jitted_get_learning_rate() -> None:
    sched = make_cos()
    layouts = {
        "inject": optax.chain(
            optax.inject_hyperparams(optax.sgd)(learning_rate=sched),
            lrjax.reduce_on_plateau(factor=0.5, patience=0),
        ),
        "multi": optax.multi_transform(
            {
                "head": optax.inject_hyperparams(optax.sgd)(learning_rate=0.3),
                "body": optax.inject_hyperparams(optax.sgd)(learning_rate=sched),
            },
            LABELS,
        ),
    }
    for name, tx in layouts.items():
        takes_value = name == "inject"
        state, _ = run(tx, 4, [1.0, 2.0, 3.0, 4.0] if takes_value else None)
        eager = lrjax.get_learning_rate(state)
        jitted = jax.jit(lrjax.get_learning_rate)(state)
        assert jax.tree.structure(eager) == jax.tree.structure(jitted)
        for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
            np.testing.assert_allclose(a, b, rtol=1e-7)
    state, _ = run(optax.sgd(sched), 5)
    fn = jax.jit(lambda s: lrjax.get_learning_rate(s, base_lr=sched))
    assert float(fn(state)) == pytest.approx(cos_rate(4), rel=1e-5)


def test_no_rate_is_a_clear_error() -> None:
    for tx in (optax.adam(1e-3), optax.chain(optax.clip(1.0), optax.sgd(0.1)), optax.sgd(0.1)):
        with pytest.raises(ValueError, match="no learning rate") as info:
            lrjax.get_learning_rate(tx.init(PARAMS))
        assert "inject_hyperparams" in str(info.value) and "base_lr" in str(info.value)
    # base_lr as a number, with no scale: returned as is.
    assert float(lrjax.get_learning_rate(optax.adam(1e-3).init(PARAMS), base_lr=1e-3)) == (
        pytest.approx(1e-3)
    )


def test_get_hyperparam() -> None:
    b1 = lrjax.linear(0.95, 0.85, 10)
    tx = optax.inject_hyperparams(optax.adamw)(learning_rate=1e-3, b1=b1, weight_decay=0.05)
    state, _ = run(tx, 5)
    assert float(lrjax.get_hyperparam(state, "weight_decay")) == pytest.approx(0.05)
    assert float(lrjax.get_hyperparam(state, "b1")) == pytest.approx(0.95 - 0.1 * 4 / 10)
    with pytest.raises(ValueError, match="momentum") as info:
        lrjax.get_hyperparam(state, "momentum")
    for name in ("b1", "b2", "eps", "learning_rate", "weight_decay"):
        assert name in str(info.value)
    # scales do not apply to other hyperparameters; multi_transform gives a dict
    tx = optax.multi_transform(
        {
            "head": optax.chain(
                optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9),
                lrjax.reduce_on_plateau(factor=0.5, patience=0),
            ),
            "body": optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.5),
        },
        LABELS,
    )
    state, _ = run(tx, 3, [1.0, 2.0, 3.0])
    got = lrjax.get_hyperparam(state, "momentum")
    assert {k: round(float(v), 6) for k, v in got.items()} == {"head": 0.9, "body": 0.5}
    rates = lrjax.get_learning_rate(state)
    assert float(rates["head"]) == pytest.approx(0.025) and float(rates["body"]) == pytest.approx(
        0.1
    )


# ------------------------------------------------- scales outside a multi_transform

#: Patience 0 halves at each bad check (2.0, 3.0, 2.5 are all above 1.0): 0.5**3.
#: The bold driver (x1.25 / x0.5) cuts on 2.0 and 3.0 and grows on 2.5: 0.3125.
OUTSIDE_LOSSES = [1.0, 2.0, 3.0, 2.5]
PLATEAU_SCALE, BOLD_SCALE = 0.5**3, 0.5 * 0.5 * 1.25


def two_branches() -> optax.GradientTransformation:
    """``head`` (``PARAMS["a"]``) at 0.1, ``body`` (``PARAMS["b"]``) at 0.02, both injected."""
    return optax.multi_transform(
        {
            "head": optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
            "body": optax.inject_hyperparams(optax.sgd)(learning_rate=0.02),
        },
        LABELS,
    )


def test_plateau_and_bold_driver_chained_outside_a_multi_transform() -> None:
    """Scales after the multi_transform apply to every branch's rate: rate x both scales."""
    tx = optax.chain(
        two_branches(),
        lrjax.reduce_on_plateau(factor=0.5, patience=0),
        lrjax.bold_driver(increase=1.25, decrease=0.5),
    )
    state, updates = run(tx, 4, OUTSIDE_LOSSES)
    got = lrjax.get_learning_rate(state)
    want = {"head": 0.1 * PLATEAU_SCALE * BOLD_SCALE, "body": 0.02 * PLATEAU_SCALE * BOLD_SCALE}
    assert set(got) == set(want)
    for label, sub in (("head", "a"), ("body", "b")):
        assert float(got[label]) == pytest.approx(want[label], rel=1e-6)
        assert float(got[label]) == pytest.approx(measured(updates[-1], subtree=sub), rel=1e-6)


def test_plateau_inside_one_branch_and_bold_driver_outside() -> None:
    """A branch's own plateau scales only it; the outer bold driver scales both."""
    tx = optax.chain(
        optax.multi_transform(
            {
                "head": optax.chain(
                    optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
                    lrjax.reduce_on_plateau(factor=0.5, patience=0),
                ),
                "body": optax.inject_hyperparams(optax.sgd)(learning_rate=0.02),
            },
            LABELS,
        ),
        lrjax.bold_driver(increase=1.25, decrease=0.5),
    )
    state, updates = run(tx, 4, OUTSIDE_LOSSES)
    got = lrjax.get_learning_rate(state)
    assert float(got["head"]) == pytest.approx(0.1 * PLATEAU_SCALE * BOLD_SCALE, rel=1e-6)
    assert float(got["body"]) == pytest.approx(0.02 * BOLD_SCALE, rel=1e-6)
    assert float(got["head"]) == pytest.approx(measured(updates[-1], subtree="a"), rel=1e-6)
    assert float(got["body"]) == pytest.approx(measured(updates[-1], subtree="b"), rel=1e-6)


# --------------------------------------------- states restored without a target


def cut_state() -> tuple[Any, float]:
    """Adam at 1e-3 and a plateau that has halved twice (1.0, 2.0, 3.0): 2.5e-4."""
    tx = optax.chain(optax.adam(1e-3), lrjax.reduce_on_plateau(factor=0.5, patience=0))
    state, _ = run(tx, 3, [1.0, 2.0, 3.0])
    return state, 1e-3 * 0.25


def test_orbax_restore_without_a_target(tmp_path: Any) -> None:
    """Orbax ``restore(path)`` with no target gives lists and dicts; the rate is still read."""
    ocp = pytest.importorskip("orbax.checkpoint")
    state, want = cut_state()
    tx = optax.chain(two_branches(), lrjax.reduce_on_plateau(factor=0.5, patience=0))
    multi, _ = run(tx, 3, [1.0, 2.0, 3.0])
    checkpointer = ocp.StandardCheckpointer()
    for name, live in (("plain", state), ("multi", multi)):
        checkpointer.save(tmp_path / name, live)
    checkpointer.wait_until_finished()
    restored = checkpointer.restore(tmp_path / "plain")
    assert isinstance(restored, list)  # no NamedTuple survives: the case to handle
    live_rate = float(lrjax.get_learning_rate(state, base_lr=1e-3))
    assert live_rate == pytest.approx(want, rel=1e-6)
    assert float(lrjax.get_learning_rate(restored, base_lr=1e-3)) == live_rate
    got = lrjax.get_learning_rate(checkpointer.restore(tmp_path / "multi"))
    assert {k: float(v) for k, v in got.items()} == pytest.approx({"head": 0.025, "body": 0.005})


def test_flax_state_dict_is_read_like_the_live_state() -> None:
    """``flax.serialization.to_state_dict``: plateau, bold driver, injected rates, schedules."""
    serialization = pytest.importorskip("flax.serialization")
    state, want = cut_state()
    as_dict = serialization.to_state_dict(state)
    assert float(lrjax.get_learning_rate(as_dict, base_lr=1e-3)) == pytest.approx(want, rel=1e-6)

    tx = optax.chain(
        optax.multi_transform(
            {
                "head": optax.chain(
                    optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
                    lrjax.reduce_on_plateau(factor=0.5, patience=0),
                ),
                "body": optax.chain(optax.sgd(make_cos()), lrjax.bold_driver(1.25, 0.5)),
            },
            LABELS,
        ),
    )
    live, _ = run(tx, 4, OUTSIDE_LOSSES)
    # body: the schedule at the latest step (3), read through the dict's count
    want = {"head": 0.1 * PLATEAU_SCALE, "body": cos_rate(3) * BOLD_SCALE}
    for s in (live, serialization.to_state_dict(live)):
        got = lrjax.get_learning_rate(s, base_lr=make_cos())
        assert {k: float(v) for k, v in got.items()} == pytest.approx(want, rel=1e-6)


def test_unknown_plain_dict_scale_is_an_error_not_a_guess() -> None:
    """A plain dict with a scalar ``scale`` that is no known state: ValueError, not base_lr."""
    serialization = pytest.importorskip("flax.serialization")
    as_dict = serialization.to_state_dict(cut_state()[0])
    as_dict["1"]["extra_field"] = np.zeros(())  # no longer a plateau state's fields
    with pytest.raises(ValueError, match=r"target=opt_state"):
        lrjax.get_learning_rate(as_dict, base_lr=1e-3)
    injected = {"count": 3, "hyperparams": {"learning_rate": 0.1}, "unknown": 0}
    with pytest.raises(ValueError, match="hyperparams"):
        lrjax.get_learning_rate([injected])
