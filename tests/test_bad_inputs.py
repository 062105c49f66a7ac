"""A battery of wrong calls across lrjax: each raises a clear error naming the parameter.

Every case is a call a user could plausibly make by mistake (wrong type, NaN or
inf, a negative step count, mismatched shapes, a loss returning a vector,
batches with inconsistent leading axes, an optimizer that is not a factory, an
empty or inverted rate range, an unreadable ``--data`` file, ...). Each must
raise ``ValueError``/``TypeError`` (the CLI: exactly one line on stderr and
exit code 2) whose message contains the parameter's name, and never return (so
never a NaN) or hang.
"""

from __future__ import annotations

import math
import re

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax
from lrjax import cli, transforms
from lrjax.callbacks import early_stopping

nan, inf = math.nan, math.inf

# ------------------------------------------------------------------ a tiny problem

X = np.random.default_rng(0).normal(size=(10, 8, 3)).astype(np.float32)
Y = X @ np.array([1.0, -2.0, 0.5], np.float32)
BATCHES = (X, Y)
W0 = jnp.zeros(3, jnp.float32)


def mse(w, b):
    return jnp.mean((b[0] @ w - b[1]) ** 2)


def rt(**kw):
    args = {
        "loss_fn": mse,
        "params": W0,
        "batches": BATCHES,
        "num_steps": 10,
        "num_lrs": 4,
        "min_lr": 1e-3,
        "max_lr": 1.0,
        "progress": False,
        **kw,
    }
    return lrjax.range_test(**args)


def lf(**kw):
    args = {"loss_fn": mse, "params": W0, "batches": BATCHES, "num_steps": 10, "progress": False}
    return lrjax.lr_find(**{**args, **kw})


def sweep(**kw):
    args = {
        "loss_fn": mse,
        "params": W0,
        "batches": BATCHES,
        "make_optimizer": lambda learning_rate: optax.sgd(learning_rate),
        "grid": {"learning_rate": [0.01, 0.1]},
        "progress": False,
        **kw,
    }
    return lrjax.sweep(**args)


COS = lrjax.cosine(0.1, 100)

# (id, thunk, exception type(s), the parameter name the message must contain)
SCHEDULE_CASES = [
    ("constant nan", lambda: lrjax.constant(nan), ValueError, "value"),
    ("constant str", lambda: lrjax.constant("0.1"), TypeError, "value"),
    ("constant bool", lambda: lrjax.constant(True), TypeError, "value"),
    ("step_decay negative", lambda: lrjax.step_decay(0.1, -5), ValueError, "step_size"),
    ("step_decay fractional", lambda: lrjax.step_decay(0.1, 2.5), ValueError, "step_size"),
    ("multistep unsorted", lambda: lrjax.multistep(0.1, [30, 10]), ValueError, "milestones"),
    ("multistep str", lambda: lrjax.multistep(0.1, "10,20"), (TypeError, ValueError), "milestones"),
    ("multistep negative", lambda: lrjax.multistep(0.1, [-1, 10]), ValueError, "milestones"),
    (
        "piecewise lengths",
        lambda: lrjax.piecewise_constant([10, 20], [1.0, 0.1]),
        ValueError,
        "values",
    ),
    (
        "piecewise mode",
        lambda: lrjax.piecewise_constant([10], [1.0, 0.1], at_boundary="mid"),
        ValueError,
        "at_boundary",
    ),
    ("exponential nan rate", lambda: lrjax.exponential(0.1, nan), ValueError, "decay_rate"),
    (
        "exponential zero decay_steps",
        lambda: lrjax.exponential(0.1, 0.9, decay_steps=0),
        ValueError,
        "decay_steps",
    ),
    (
        "exponential negative begin",
        lambda: lrjax.exponential(0.1, 0.9, transition_begin=-3),
        ValueError,
        "transition_begin",
    ),
    ("linear negative steps", lambda: lrjax.linear(0.1, 0.0, -10), ValueError, "steps"),
    ("polynomial inf power", lambda: lrjax.polynomial(0.1, 0, 100, power=inf), ValueError, "power"),
    ("inverse_sqrt zero warmup", lambda: lrjax.inverse_sqrt(1.0, 0), ValueError, "warmup_steps"),
    ("cosine inf steps", lambda: lrjax.cosine(0.1, inf), ValueError, "steps"),
    ("cosine numpy nan", lambda: lrjax.cosine(np.float32(nan), 10), ValueError, "init_value"),
    (
        "cosine_restarts fractional mult",
        lambda: lrjax.cosine_restarts(0.1, 10, period_mult=1.5),
        ValueError,
        "period_mult",
    ),
    ("cyclic mode", lambda: lrjax.cyclic(0.01, 0.1, 10, mode="tri"), ValueError, "mode"),
    (
        "one_cycle pct_start > 1",
        lambda: lrjax.one_cycle(0.1, 100, pct_start=1.5),
        ValueError,
        "pct_start",
    ),
    ("one_cycle negative total", lambda: lrjax.one_cycle(0.1, -100), ValueError, "total_steps"),
    ("one_cycle bool max", lambda: lrjax.one_cycle(True, 100), TypeError, "max_value"),
    (
        "wsd decay_fraction 2",
        lambda: lrjax.wsd(0.1, 100, decay_fraction=2.0),
        ValueError,
        "decay_fraction",
    ),
    (
        "wsd warmup past the end",
        lambda: lrjax.wsd(0.1, 100, warmup_steps=200),
        ValueError,
        "warmup_steps",
    ),
    ("warmup of a number", lambda: lrjax.warmup(0.1, 10), TypeError, "schedule"),
    ("warmup negative steps", lambda: lrjax.warmup(COS, -5), ValueError, "steps"),
    (
        "join boundaries count",
        lambda: lrjax.join([COS, lrjax.constant(0.1)], [10, 20]),
        ValueError,
        "boundaries",
    ),
    ("clip lo > hi", lambda: lrjax.clip(COS, 1.0, 0.1), ValueError, "lo"),
    ("scale by nan", lambda: COS * nan, ValueError, "factor"),
    ("scale by str", lambda: COS * "2", TypeError, "factor"),
    ("step as str", lambda: COS("10"), TypeError, "step"),
    ("step None", lambda: COS(None), TypeError, "step"),
    ("step complex", lambda: COS(1j), TypeError, "step"),
    (
        "from_dict unknown parameter",
        lambda: lrjax.schedules.from_dict({"name": "cosine", "init_value": 0.1, "stepz": 10}),
        ValueError,
        "stepz",
    ),
    (
        "from_dict unknown name",
        lambda: lrjax.schedules.from_dict({"name": "cosinus"}),
        ValueError,
        "cosinus",
    ),
]

RANGE_TEST_CASES = [
    (
        "loss_fn returns a vector",
        lambda: rt(loss_fn=lambda w, b: (b[0] @ w - b[1]) ** 2),
        ValueError,
        "loss_fn",
    ),
    (
        "loss_fn returns (loss, aux)",
        lambda: rt(loss_fn=lambda w, b: (mse(w, b), 0.0)),
        ValueError,
        "loss_fn",
    ),
    ("loss_fn not callable", lambda: rt(loss_fn="mse"), TypeError, "loss_fn"),
    (
        "batches inconsistent leading axes",
        lambda: rt(batches=(X, Y[:7])),
        ValueError,
        "batches",
    ),
    ("batches None", lambda: rt(batches=None), ValueError, "batches"),
    (
        "batch shapes do not fit params",
        lambda: rt(batches=(X[..., :2], Y)),
        TypeError,
        "params",
    ),
    ("params wrong shape", lambda: rt(params=jnp.zeros(4)), TypeError, "params"),
    ("params with NaN", lambda: rt(params=jnp.array([nan, 0.0, 0.0])), ValueError, "params"),
    ("params with inf", lambda: rt(params={"w": jnp.array([0.0, inf, 0.0])}), ValueError, "params"),
    ("params int", lambda: rt(params=jnp.zeros(3, jnp.int32)), TypeError, "params"),
    ("params str", lambda: rt(params="w"), TypeError, "params"),
    ("optimizer instance", lambda: rt(optimizer=optax.adam(1e-3)), TypeError, "optimizer"),
    ("optimizer number", lambda: rt(optimizer=0.01), TypeError, "optimizer"),
    ("optimizer returns a number", lambda: rt(optimizer=lambda lr: lr), TypeError, "optimizer"),
    ("min_lr == max_lr (empty range)", lambda: rt(min_lr=0.1, max_lr=0.1), ValueError, "min_lr"),
    ("min_lr > max_lr", lambda: rt(min_lr=1.0, max_lr=0.1), ValueError, "min_lr"),
    ("num_lrs 0 (empty range)", lambda: rt(num_lrs=0), ValueError, "num_lrs"),
    ("num_lrs float", lambda: rt(num_lrs=4.0), TypeError, "num_lrs"),
    ("min_lr nan", lambda: rt(min_lr=nan), ValueError, "min_lr"),
    ("min_lr negative", lambda: rt(min_lr=-1e-3), ValueError, "min_lr"),
    ("min_lr None", lambda: rt(min_lr=None), TypeError, "min_lr"),
    ("max_lr inf", lambda: rt(max_lr=inf), ValueError, "max_lr"),
    ("max_lr numpy nan", lambda: rt(max_lr=np.float32(nan)), ValueError, "max_lr"),
    ("num_steps negative", lambda: rt(num_steps=-5), ValueError, "num_steps"),
    ("num_steps float", lambda: rt(num_steps=2.5), TypeError, "num_steps"),
    ("num_steps > batches", lambda: rt(num_steps=11), ValueError, "num_steps"),
    ("seeds without init_fn", lambda: rt(seeds=2), ValueError, "seeds"),
    ("init_fn not callable", lambda: rt(init_fn=3), TypeError, "init_fn"),
    ("chunk_size 0", lambda: rt(chunk_size=0), ValueError, "chunk_size"),
    ("diverge_factor <= 1", lambda: rt(diverge_factor=0.5), ValueError, "diverge_factor"),
    ("diverge_factor nan", lambda: rt(diverge_factor=nan), ValueError, "diverge_factor"),
    ("mode", lambda: rt(mode="fast"), ValueError, "mode"),
    ("step_mode", lambda: lf(step_mode="cos"), ValueError, "step_mode"),
    ("lr_find min_lr >= max_lr", lambda: lf(min_lr=1.0, max_lr=0.1), ValueError, "min_lr"),
    ("lr_find num_steps 0", lambda: lf(num_steps=0), ValueError, "num_steps"),
    ("strategy", lambda: rt(strategy="fast"), ValueError, "strategy"),
    ("lr_find strategy", lambda: lf(strategy=1), ValueError, "strategy"),
    ("progress str", lambda: rt(progress="yes"), TypeError, "progress"),
    ("mesh str", lambda: rt(mesh="gpu"), TypeError, "mesh"),
    ("sweep grid empty", lambda: sweep(grid={}), ValueError, "grid"),
    ("sweep grid NaN", lambda: sweep(grid={"learning_rate": [0.1, nan]}), ValueError, "grid"),
    ("sweep grid empty values", lambda: sweep(grid={"learning_rate": []}), ValueError, "grid"),
    (
        "sweep make_optimizer instance",
        lambda: sweep(make_optimizer=optax.sgd(0.1)),
        TypeError,
        "make_optimizer",
    ),
    ("sweep combine", lambda: sweep(combine="outer"), ValueError, "combine"),
    ("val_batches scalar leaf", lambda: rt(val_batches=(X[0], 1.0)), ValueError, "val_batches"),
    ("val_batches callable", lambda: rt(val_batches=lambda i: BATCHES), TypeError, "val_batches"),
    ("val_batches empty list", lambda: rt(val_batches=[]), ValueError, "val_batches"),
    (
        "val_batches do not fit the model",
        lambda: rt(val_batches=(X[..., :2], Y)),
        TypeError,
        "val_batches",
    ),
    ("eval_fn not callable", lambda: rt(val_batches=BATCHES, eval_fn=2), TypeError, "eval_fn"),
    ("eval_every without val_batches", lambda: rt(eval_every=2), ValueError, "eval_every"),
    ("eval_every 0", lambda: rt(val_batches=BATCHES, eval_every=0), ValueError, "eval_every"),
    (
        "eval_every > num_steps",
        lambda: rt(val_batches=BATCHES, eval_every=11),
        ValueError,
        "eval_every",
    ),
    ("key int", lambda: rt(key=3), ValueError, "key"),
    ("key str", lambda: rt(key="seed"), TypeError, "key"),
    ("state with a two-argument loss_fn", lambda: rt(state=jnp.zeros(2)), TypeError, "state"),
    (
        "state loss_fn returns the loss alone",
        lambda: rt(state=jnp.zeros(2), loss_fn=lambda w, s, b: mse(w, b)),
        TypeError,
        "new_state",
    ),
    (
        "a one-shot iterator runs out before num_steps",
        lambda: rt(batches=iter([(X[i], Y[i]) for i in range(5)]), num_steps=8),
        ValueError,
        "num_steps",
    ),
    (
        "batches ragged",
        lambda: rt(batches=[(X[i][: 8 - i % 2], Y[i][: 8 - i % 2]) for i in range(10)]),
        ValueError,
        "step 1",
    ),
    ("has_aux str", lambda: rt(has_aux="yes"), TypeError, "has_aux"),
    ("return_params None", lambda: rt(return_params=None), TypeError, "return_params"),
    ("chunk_size str", lambda: rt(chunk_size="big"), TypeError, "chunk_size"),
]


def suggest_bad_method():
    result = rt()
    return result.suggest("median")


RESULT_CASES = [("suggest unknown method", suggest_bad_method, ValueError, "method")]


def transform_cases():
    """Wrong calls of lrjax.transforms / lrjax.callbacks."""
    cases = []
    rop = transforms.reduce_on_plateau
    cases += [
        ("plateau factor >= 1", lambda: rop(factor=1.5), ValueError, "factor"),
        ("plateau factor nan", lambda: rop(factor=nan), ValueError, "factor"),
        ("plateau negative patience", lambda: rop(patience=-1), ValueError, "patience"),
        (
            "plateau threshold_mode",
            lambda: rop(threshold_mode="pct"),
            ValueError,
            "threshold_mode",
        ),
        ("plateau mode", lambda: rop(mode="lowest"), ValueError, "mode"),
        ("plateau negative cooldown", lambda: rop(cooldown=-2), ValueError, "cooldown"),
        (
            "plateau accumulation 0",
            lambda: rop(accumulation_steps=0),
            ValueError,
            "accumulation_steps",
        ),
        ("plateau min_scale < 0", lambda: rop(min_scale=-0.1), ValueError, "min_scale"),
    ]
    bd = transforms.bold_driver
    cases += [
        ("bold_driver increase < 1", lambda: bd(increase=0.9), ValueError, "increase"),
        ("bold_driver decrease > 1", lambda: bd(decrease=1.5), ValueError, "decrease"),
        ("bold_driver min_scale > 1", lambda: bd(min_scale=2.0), ValueError, "min_scale"),
    ]
    sbl = transforms.scale_by_layer
    params = {"dense": {"kernel": jnp.ones((2, 2))}}

    def no_match():
        tx = sbl({"nothing_like_this": 2.0})
        return tx.init(params)

    def bad_regex():
        tx = sbl({"dense[": 2.0})
        return tx.init(params)

    cases += [
        ("scale_by_layer pattern matches nothing", no_match, ValueError, "nothing_like_this"),
        ("scale_by_layer bad regex", bad_regex, (ValueError, TypeError), "dense["),
        ("scale_by_layer nan multiplier", lambda: sbl({"dense": nan}), ValueError, "dense"),
    ]
    mup_base = {"dense": {"kernel": jnp.ones((2, 2))}}
    mup_params = {"dense": {"kernel": jnp.ones((4, 4))}}
    cases += [
        ("scale_by_mup unknown optimizer", lambda: transforms.scale_by_mup(mup_base, "lamb"),
         ValueError, "optimizer"),
        ("scale_by_mup base of another tree",
         lambda: transforms.scale_by_mup({"head": jnp.ones(2)}, "adam").init(mup_params),
         ValueError, "base_shapes"),
        ("scale_by_mup base of another rank",
         lambda: transforms.scale_by_mup({"dense": {"kernel": jnp.ones(2)}}, "sgd").init(
             mup_params), ValueError, "dense/kernel"),
        ("mup_shapes unknown layout",
         lambda: transforms.mup_shapes(mup_params, mup_base, layout="torch"),
         ValueError, "layout"),
    ]  # fmt: skip
    lm = transforms.layer_multipliers
    cases += [
        ("layer_multipliers 0 groups", lambda: lm(0, 1e-4, 1e-2), ValueError, "n_groups"),
        ("layer_multipliers lo <= 0", lambda: lm(3, 0.0, 1e-2), ValueError, "lo"),
    ]
    ab = transforms.adabound
    cases += [
        ("adabound negative final_lr", lambda: ab(1e-3, final_lr=-0.1), ValueError, "final_lr"),
        ("adabound b1 >= 1", lambda: ab(1e-3, b1=1.0), ValueError, "b1"),
        ("adabound gamma nan", lambda: ab(1e-3, gamma=nan), ValueError, "gamma"),
    ]

    def no_rate():
        return transforms.get_learning_rate(optax.sgd(0.1).init(W0))

    cases += [("get_learning_rate without a rate", no_rate, ValueError, "learning rate")]
    cases += [
        ("early_stopping mode", lambda: early_stopping(mode="lowest"), ValueError, "mode"),
        (
            "early_stopping patience < 0",
            lambda: early_stopping(patience=-1),
            ValueError,
            "patience",
        ),
        (
            "early_stopping min_delta nan",
            lambda: early_stopping(min_delta=nan),
            ValueError,
            "min_delta",
        ),
    ]
    return cases


def framework_cases():
    """Models and data as other libraries write them (docs/frameworks.md)."""
    cases = []

    def rngs_with_plain_params():
        return rt(loss_fn=lambda w, b, rngs: mse(w, b))

    def string_leaf():
        return rt(batches=[(X[i], "label") for i in range(10)])

    def object_leaf_later():
        return rt(batches=[(X[i], Y[i] if i != 3 else object()) for i in range(10)])

    def val_string_leaf():
        return rt(val_batches=[(X[0], "label")])

    cases += [
        ("rngs asked for with plain params", rngs_with_plain_params, TypeError, "rngs"),
        ("a batch leaf that is a string", string_leaf, TypeError, "batches at step 0"),
        ("a batch leaf that is an object", object_leaf_later, TypeError, "batches at step 3"),
        ("a val_batches leaf that is a string", val_string_leaf, TypeError, "val_batches"),
    ]
    try:
        import equinox as eqx
        import jax
    except ImportError:  # an optional extra
        return cases
    model = eqx.nn.Linear(3, "scalar", key=jax.random.key(0))
    outside = eqx.nn.Linear(3, "scalar", key=jax.random.key(1))

    def loss_uses_outside_model():
        loss = lambda m, b: jnp.mean((jax.vmap(outside)(b[0]) - b[1]) ** 2)
        return rt(loss_fn=loss, params=model)

    def eqx_state_not_a_state():
        return rt(loss_fn=lambda m, s, b: (mse(m.weight, b), s), params=model, state={"n": W0})

    cases += [
        ("equinox loss_fn uses a model from outside", loss_uses_outside_model, ValueError,
         "loss_fn"),
        ("equinox state= not an eqx.nn.State", eqx_state_not_a_state, TypeError, "state"),
    ]  # fmt: skip
    return cases


CASES = SCHEDULE_CASES + RANGE_TEST_CASES + RESULT_CASES + transform_cases() + framework_cases()


def test_the_battery_is_large_enough():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)  # unique ids


@pytest.mark.parametrize(
    ("thunk", "error", "name"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_wrong_call_raises_naming_the_parameter(thunk, error, name):
    with pytest.raises(error) as info:
        thunk()
    message = str(info.value)
    assert name in message, f"{name!r} not named in: {message}"
    assert "Traceback" not in message and message.strip() == message.strip().split("\n\n")[0]


# ------------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    (d / "garbage.npz").write_bytes(b"\x00\x01 not a zip file")
    np.savez(d / "no_y.npz", X=np.ones((5, 3)))
    np.savez(d / "nan_X.npz", X=np.full((5, 3), np.nan), y=np.arange(5))
    np.savez(d / "short_y.npz", X=np.ones((5, 3)), y=np.arange(4))
    np.save(d / "single.npy", np.ones(3))
    return d


CLI_CASES = [
    (["find", "--data", "{d}/missing.npz"], "--data"),
    (["find", "--data", "{d}/garbage.npz"], "--data"),
    (["find", "--data", "{d}/no_y.npz"], "--data"),
    (["find", "--data", "{d}/nan_X.npz"], "--data"),
    (["find", "--data", "{d}/short_y.npz"], "--data"),
    (["find", "--data", "{d}/single.npy"], "--data"),
    (["find", "--data", "{d}"], "--data"),
    (["find", "--min-lr", "-1"], "--min-lr"),
    (["find", "--min-lr", "nan"], "--min-lr"),
    (["find", "--max-lr", "inf"], "--max-lr"),
    (["find", "--min-lr", "1", "--max-lr", "0.1"], "--min-lr"),
    (["find", "--num-lrs", "0"], "--num-lrs"),
    (["find", "--steps", "-5"], "--steps"),
    (["find", "--steps", "ten"], "--steps"),
    (["find", "--seeds", "0"], "--seeds"),
    (["find", "--optimizer", "lion"], "--optimizer"),
    (["find", "--mode", "fast"], "--mode"),
    (["find", "--val-fraction", "1.5"], "--val-fraction"),
    (["find", "--out", "/nonexistent/dir/x.png"], "--out"),
    (["find", "--out", "{d}/plot.unknownext"], "--out"),
    (["plot", "cosine(init_value='a', steps=10)"], "init_value"),
    (["plot", "cosine(init_value=0.1, steps=-1)"], "steps"),
    (["plot", "cosinus(init_value=0.1)"], "cosinus"),
    (["plot", '{"name": "cosine", "init_value": 0.1, "stepz": 5}'], "stepz"),
    (["plot", "{not json"], "JSON"),
    (["plot", "cosine(init_value=0.1, steps=10)", "--steps", "0"], "--steps"),
    (["frobnicate"], "frobnicate"),
]


@pytest.mark.parametrize(("argv", "name"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_wrong_call_is_one_line_and_exit_2(
    argv, name, bad_files, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{d}", str(bad_files)) for a in argv]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("lrjax: error: ")
    assert name in lines[0], lines[0]
    assert not list(tmp_path.glob("*.png"))  # nothing was written
    assert not re.search(r"Traceback|File \"", out + err)
