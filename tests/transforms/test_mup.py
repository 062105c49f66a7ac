"""mup_shapes and scale_by_mup: muP's per-parameter rates, checked against microsoft/mup.

The reference is the ``mup`` package (1.0.0): torch models get their base shapes
from ``mup.set_base_shapes(model, base, delta=delta)``, and ``mup.MuAdam`` /
``mup.MuSGD`` / ``mup.MuAdamW`` split the parameters into groups with their own
rates. With ``lr=1.0`` a group's rate is the multiplier itself, so lrjax's
multipliers must equal the reference's exactly (both divide the same Python
floats in the same order). Then a few optimizer steps of ``optax.chain(optax.adam
(lr), lrjax.scale_by_mup(base, "adam"))`` (and SGD with momentum, and the two
places weight decay can sit) must match the reference optimizer's on the same
weights and gradients, in PyTorch's ``[out, in]`` layout and transposed to
Flax's ``[in, out]``.

The rest: the tables on hand-written shapes, Flax NNX and Equinox models at
their own layouts, jit / vmap / inject_hyperparams, the identity at the base
shapes (a property), bad input, and a coordinate check: with muP a few steps
move a model's outputs the same at width 16 and 1024.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrjax
from lrjax.transforms import MupShape, mup_shapes, scale_by_mup

torch = pytest.importorskip("torch")
mup = pytest.importorskip("mup")
nn = torch.nn

D_IN, D_OUT, VOCAB = 5, 3, 11
U32 = 2.0**-24  # float32's unit roundoff


def sds(shape: tuple[int, ...]) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(shape, jnp.float32)


# ----------------------------------------------------------- torch references


def torch_mlp(width: int, ffn: int) -> Any:
    """in -> width -> ffn -> width (no bias) -> readout: a hidden layer each way."""
    return nn.Sequential(
        nn.Linear(D_IN, width), nn.ReLU(),
        nn.Linear(width, ffn), nn.ReLU(),
        nn.Linear(ffn, width, bias=False), nn.ReLU(),
        mup.MuReadout(width, D_OUT),
    )  # fmt: skip


class TorchMixed(nn.Module):
    """An embedding, convolutions, a norm, a scalar and a fixed-size table around an MLP."""

    def __init__(self, width: int, ffn: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.stem = nn.Conv2d(3, width, 3)
        self.conv = nn.Conv2d(width, ffn, 3, bias=False)
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, ffn)
        self.down = nn.Linear(ffn, width)
        self.readout = mup.MuReadout(width, D_OUT)
        self.gate = nn.Parameter(torch.ones(()))
        self.table = nn.Parameter(torch.ones(4, 7))


MODELS = {"mlp": torch_mlp, "mixed": TorchMixed}

# (base, delta, target) as (width, ffn): with a delta and without, the fan-in and
# fan-out growing apart, a target narrower than the base (multipliers below 1),
# and (with a delta) width axes that grow but sit at their base size.
CONFIGS = {
    "delta": ((4, 8), (5, 10), (12, 48)),
    "no_delta": ((4, 8), None, (12, 48)),
    "odd_sizes": ((3, 7), (6, 9), (10, 11)),
    "narrower": ((8, 16), (6, 8), (6, 8)),
    "width_at_base": ((4, 8), (6, 12), (4, 24)),
}


def torch_model(kind: str, config: str, seed: int = 0) -> Any:
    """The reference model at the target size, its base shapes set by ``mup``."""
    base, delta, target = CONFIGS[config]
    torch.manual_seed(seed)
    model = MODELS[kind](*target)
    mup.set_base_shapes(
        model, MODELS[kind](*base), delta=None if delta is None else MODELS[kind](*delta)
    )
    return model


def reference_multipliers(model: Any, optimizer: str) -> dict[str, float]:
    """``{name: group lr}`` of MuAdam / MuSGD built with ``lr=1.0``."""
    make = {"adam": mup.MuAdam, "sgd": mup.MuSGD}[optimizer]
    opt = make(model.parameters(), lr=1.0)
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g["lr"] for g in opt.param_groups for p in g["params"]}


# ------------------------------------------------------ the same trees in JAX


def to_flax(name: str, x: np.ndarray) -> np.ndarray:
    """A torch parameter in Flax's layout: kernels [in, out], convs [h, w, in, out]."""
    if x.ndim == 2 and "embed" not in name and "table" not in name:
        return x.T  # an embedding is [vocab, width] in both
    if x.ndim == 4:
        return x.transpose(2, 3, 1, 0)
    return x


def from_flax(name: str, x: np.ndarray) -> np.ndarray:
    if x.ndim == 4:
        return x.transpose(3, 2, 0, 1)
    return to_flax(name, x)


def jax_tree(named: dict[str, np.ndarray], layout: str) -> dict[str, Any]:
    """``{name: array}`` in ``layout``; the flat names are the paths."""
    convert = to_flax if layout == "in_out" else (lambda n, x: x)
    return {n: jnp.asarray(convert(n, np.asarray(x))) for n, x in named.items()}


def torch_arrays(model: Any) -> dict[str, np.ndarray]:
    return {n: p.detach().numpy().copy() for n, p in model.named_parameters()}


def jax_shapes(kind: str, size: tuple[int, int] | None, layout: str) -> Any:
    if size is None:
        return None
    model = MODELS[kind](*size)
    named = {n: np.zeros(tuple(p.shape), np.float32) for n, p in model.named_parameters()}
    return jax.tree.map(lambda x: sds(x.shape), jax_tree(named, layout))


def lrjax_multipliers(kind: str, config: str, optimizer: str, layout: str) -> dict[str, float]:
    base, delta, target = CONFIGS[config]
    params = jax_shapes(kind, target, layout)
    found = mup_shapes(
        params, jax_shapes(kind, base, layout), jax_shapes(kind, delta, layout), layout=layout
    )
    return {path: s.lr_multiplier(optimizer) for path, s in found.items()}


# ------------------------------------------------- multipliers = the reference


@pytest.mark.parametrize("layout", ["out_in", "in_out"])
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_multipliers_equal_the_reference_group_rates(optimizer, kind, config, layout):
    expected = reference_multipliers(torch_model(kind, config), optimizer)
    got = lrjax_multipliers(kind, config, optimizer, layout)
    assert got == expected


@pytest.mark.parametrize("layout", ["out_in", "in_out"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_kinds_and_fan_multipliers_equal_the_reference_infshapes(config, layout):
    model = torch_model("mixed", config)
    base, delta, target = CONFIGS[config]
    found = mup_shapes(
        jax_shapes("mixed", target, layout),
        jax_shapes("mixed", base, layout),
        jax_shapes("mixed", delta, layout),
        layout=layout,
    )
    for name, p in model.named_parameters():
        s, ref = found[name], p.infshape
        assert s.kind == ("scalar", "vector", "matrix")[ref.ninf()], name
        if ref.ninf() == 2:  # torch's [out, in]: fan-in is axis 1
            assert (s.fan_in_mult, s.fan_out_mult) == (ref[1].width_mult(), ref[0].width_mult())
        assert s.width_mult == ref.width_mult(), name
        if layout == "out_in":
            assert s.width_axes == tuple(i for i, d in enumerate(ref) if d.isinf()), name
            assert s.base_shape == tuple(
                d.base_dim if d.isinf() else d.dim for d in ref
            ), name  # fmt: skip


def test_reference_configs_exercise_every_rule():
    """The configurations above hold every kind and multipliers above, at and below 1."""
    seen = set()
    for config in CONFIGS:
        for opt in ("adam", "sgd"):
            for m in reference_multipliers(torch_model("mixed", config), opt).values():
                seen.add((opt, "<1" if m < 1 else ">1" if m > 1 else "1"))
    assert seen == {(o, c) for o in ("adam", "sgd") for c in ("<1", "1", ">1")}


# ------------------------------------------------------ steps = the reference


def random_grads(model: Any, steps: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    return [
        {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
        for _ in range(steps)
    ]


def torch_run(model: Any, opt: Any, grads: list[dict[str, np.ndarray]]) -> list[Any]:
    """The parameters after each step of ``opt`` fed ``grads``."""
    params = dict(model.named_parameters())
    out = []
    for g in grads:
        for n, p in params.items():
            p.grad = torch.from_numpy(g[n].copy())
        opt.step()
        out.append(torch_arrays(model))
    return out


def optax_run(tx: Any, params: Any, grads: list[Any]) -> list[Any]:
    state = tx.init(params)
    out = []
    for g in grads:
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
        out.append(params)
    return out


LR, WD, MOMENTUM = 0.01, 0.1, 0.9


def reference_optimizer(name: str, model: Any) -> Any:
    if name == "adam":
        return mup.MuAdam(model.parameters(), lr=LR)
    if name == "sgd_momentum":
        return mup.MuSGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    if name == "adamw_mup_decay":
        return mup.MuAdamW(model.parameters(), lr=LR, weight_decay=WD)
    if name == "adamw_group_rates":  # MuAdamW's group rates, one weight decay for all
        opt = mup.MuAdamW(model.parameters(), lr=LR, weight_decay=WD)
        for g in opt.param_groups:
            g["weight_decay"] = WD
        return opt
    raise AssertionError(name)


def lrjax_optimizer(name: str, base: Any, delta: Any, layout: str) -> Any:
    family = "sgd" if name.startswith("sgd") else "adam"
    mup_tx = scale_by_mup(base, family, delta, layout=layout)
    if name == "adam":
        return optax.chain(optax.adam(LR), mup_tx)
    if name == "sgd_momentum":
        return optax.chain(optax.sgd(LR, momentum=MOMENTUM), mup_tx)
    if name == "adamw_mup_decay":  # decay after the multiplier: lr * wd as at the base
        return optax.chain(
            optax.scale_by_adam(), mup_tx, optax.add_decayed_weights(WD),
            optax.scale_by_learning_rate(LR),
        )  # fmt: skip
    if name == "adamw_group_rates":  # optax.adamw's decay is scaled with the leaf's rate
        return optax.chain(optax.adamw(LR, weight_decay=WD), mup_tx)
    raise AssertionError(name)


def assert_steps_close(
    got: list[Any], want: list[Any], p0: dict[str, np.ndarray], grads: list[Any],
    mults: dict[str, float], family: str, units: float = 32.0,
) -> None:  # fmt: skip
    """``got[t][n]`` and ``want[t][n]`` agree to the float32 roundings of their steps.

    A step is ``LR * mult * d`` with ``d`` Adam's normalised direction (each
    entry at most ~3.2 at b1=0.9, b2=0.999: ``|m_hat| / sqrt(v_hat) <= (1 - b1) /
    sqrt(1 - b2)`` after bias correction; 4 is used) or SGD's momentum buffer
    (at most the sum of the gradients' sizes so far). Computed with the ~10
    float32 operations of a step in another order, ``d`` moves by at most a few
    unit roundoffs of those sizes (``units`` of them: 32 leaves room), and each
    step's sum ``p + step`` rounds to within an ulp (2 ``U32 |p|``) either way.
    """
    for t in range(len(want)):
        for n in p0:
            size = [
                sum(np.abs(np.asarray(g[n])) for g in grads[: s + 1]) if family == "sgd" else 4.0
                for s in range(t + 1)
            ]
            tol = U32 * (4 * (t + 1) * np.abs(p0[n]) + units * LR * mults[n] * sum(size))
            err = np.abs(np.asarray(got[t][n]) - np.asarray(want[t][n]))
            assert np.all(err <= tol), (n, t, float(np.max(err - tol)))


@pytest.mark.parametrize("layout", ["out_in", "in_out"])
@pytest.mark.parametrize("name", ["adam", "sgd_momentum", "adamw_mup_decay", "adamw_group_rates"])
@pytest.mark.parametrize("config", ["delta", "no_delta", "narrower"])
def test_steps_equal_the_reference_optimizer(config, name, layout):
    """Three steps on the same weights and gradients; float32 agreement to a few roundings."""
    steps = 3
    model = torch_model("mixed", config, seed=1)
    p0 = torch_arrays(model)
    grads = random_grads(model, steps, seed=2)
    expected = torch_run(model, reference_optimizer(name, model), grads)

    base, delta, _ = CONFIGS[config]
    tx = lrjax_optimizer(
        name, jax_shapes("mixed", base, layout), jax_shapes("mixed", delta, layout), layout
    )
    got = optax_run(tx, jax_tree(p0, layout), [jax_tree(g, layout) for g in grads])
    back = from_flax if layout == "in_out" else (lambda n, x: x)
    got = [{n: back(n, np.asarray(x)) for n, x in g.items()} for g in got]
    family = "sgd" if name.startswith("sgd") else "adam"
    mults = lrjax_multipliers("mixed", config, family, layout)
    # b2 = 0.999 is no float32 number: optax forms 1 - b2 and 1 - b2**t in float32,
    # torch in float64, so their weights on the squared gradients differ by up to
    # U32 / (1 - b2) relative and Adam's direction by half that: 2 / (1 - b2) units more.
    units = 32.0 if family == "sgd" else 32.0 + 2 / (1 - 0.999)
    assert_steps_close(got, expected, p0, grads, mults, family, units)
    if name in ("adam", "sgd_momentum"):
        # Without scale_by_mup the steps are off by far more than that.
        plain = optax_run(
            optax.adam(LR) if name == "adam" else optax.sgd(LR, momentum=MOMENTUM),
            jax_tree(p0, layout),
            [jax_tree(g, layout) for g in grads],
        )
        plain = [{n: back(n, np.asarray(x)) for n, x in g.items()} for g in plain]
        with pytest.raises(AssertionError):
            assert_steps_close(plain, expected, p0, grads, mults, family, units)


# ------------------------------------------------------ tables in closed form


def hand_tree(width: int, ffn: int, layout: str) -> dict[str, Any]:
    """Hand-written shapes: every kind, in the layout given."""
    kernel = (lambda i, o: (i, o)) if layout == "in_out" else (lambda i, o: (o, i))
    return {
        "embed": sds((VOCAB, width)),
        "input": sds(kernel(D_IN, width)),
        "bias": sds((width,)),
        "up": sds(kernel(width, ffn)),
        "down": sds(kernel(ffn, width)),
        "readout": sds(kernel(width, D_OUT)),
        "conv": sds((3, 3, width, ffn) if layout == "in_out" else (ffn, width, 3, 3)),
        "gain": sds(()),
        "table": sds((4, 7)),
    }


@pytest.mark.parametrize("layout", ["in_out", "out_in"])
def test_tables_in_closed_form(layout):
    """Width x3 and ffn x6 from (4, 8): Tensor Programs V's Table 3 as MuAdam/MuSGD apply it."""
    shapes = mup_shapes(hand_tree(12, 48, layout), hand_tree(4, 8, layout), layout=layout)
    w, f = 3.0, 6.0  # width and ffn multipliers
    expected = {  # path: (kind, fan-in mult, fan-out mult, adam, sgd)
        "embed": ("vector", 1.0, w, 1.0, w),
        "input": ("vector", 1.0, w, 1.0, w),
        "bias": ("vector", 1.0, w, 1.0, w),
        "up": ("matrix", w, f, 1 / w, f / w),
        "down": ("matrix", f, w, 1 / f, w / f),
        "readout": ("vector", w, 1.0, 1.0, w),
        "conv": ("matrix", w, f, 1 / w, f / w),
        "gain": ("scalar", 1.0, 1.0, 1.0, 1.0),
        "table": ("scalar", 1.0, 1.0, 1.0, 1.0),
    }
    if layout == "out_in":  # an embedding [vocab, width] reads as [out, in] there
        expected["embed"] = ("vector", w, 1.0, 1.0, w)
    for path, (kind, fin, fout, adam, sgd) in expected.items():
        s = shapes[path]
        got = (s.fan_in_mult, s.fan_out_mult, s.lr_multiplier("adam"), s.lr_multiplier("sgd"))
        np.testing.assert_allclose(got, (fin, fout, adam, sgd), rtol=1e-15, err_msg=path)
        assert s.kind == kind, path


def test_updates_are_the_multipliers_times_the_optimizer_step():
    params = jax.tree.map(lambda s: jnp.ones(s.shape), hand_tree(12, 48, "in_out"))
    base = hand_tree(4, 8, "in_out")
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    for opt, inner in (("adam", optax.adam(0.1)), ("sgd", optax.sgd(0.1))):
        tx = optax.chain(inner, scale_by_mup(base, opt))
        updates, _ = tx.update(grads, tx.init(params), params)
        plain, _ = inner.update(grads, inner.init(params), params)
        for path, s in mup_shapes(params, base).items():
            np.testing.assert_allclose(
                updates[path], s.lr_multiplier(opt) * plain[path], rtol=2 * U32, err_msg=path
            )


def test_attention_kernel_with_growing_heads_reads_fan_in_first():
    """Flax's [d_model, heads, head_dim] query kernel and [heads, head_dim, d_model] output."""
    base = {"query": sds((8, 2, 4)), "out": sds((2, 4, 8))}
    params = {"query": sds((32, 4, 4)), "out": sds((4, 4, 32))}  # d_model x4, heads x2
    shapes = mup_shapes(params, base, layout="in_out")
    assert (shapes["query"].fan_in_mult, shapes["query"].fan_out_mult) == (4.0, 2.0)
    assert (shapes["out"].fan_in_mult, shapes["out"].fan_out_mult) == (2.0, 4.0)
    assert shapes["query"].lr_multiplier("adam") == 0.25


def test_mup_shape_repr_and_width_mult():
    (s,) = mup_shapes({"w": sds((6, 4))}, {"w": sds((3, 4))}).values()
    assert s == MupShape("vector", (6, 4), (3, 4), (0,), 2.0, 1.0)
    assert s.width_mult == 2.0 and "kind='vector'" in repr(s)


# ------------------------------------------------- Flax NNX and Equinox models


def nnx_mlp(width: int, ffn: int, seed: int = 0) -> Any:
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.l0 = nnx.Linear(D_IN, width, rngs=rngs)
            self.l2 = nnx.Linear(width, ffn, rngs=rngs)
            self.l4 = nnx.Linear(ffn, width, use_bias=False, rngs=rngs)
            self.l6 = nnx.Linear(width, D_OUT, rngs=rngs)

    return MLP(nnx.Rngs(seed))


def eqx_mlp(width: int, ffn: int, seed: int = 0) -> Any:
    import equinox as eqx

    class MLP(eqx.Module):
        l0: eqx.nn.Linear
        l2: eqx.nn.Linear
        l4: eqx.nn.Linear
        l6: eqx.nn.Linear
        activation: Any = jax.nn.relu  # a leaf that is not an array: skipped

        def __init__(self, key: jax.Array) -> None:
            k = jax.random.split(key, 4)
            self.l0 = eqx.nn.Linear(D_IN, width, key=k[0])
            self.l2 = eqx.nn.Linear(width, ffn, key=k[1])
            self.l4 = eqx.nn.Linear(ffn, width, use_bias=False, key=k[2])
            self.l6 = eqx.nn.Linear(width, D_OUT, key=k[3])

    return MLP(jax.random.key(seed))


# torch_mlp's names for the NNX and Equinox MLPs' parameters.
NNX_NAMES = {"l0/kernel": "0.weight", "l0/bias": "0.bias", "l2/kernel": "2.weight",
             "l2/bias": "2.bias", "l4/kernel": "4.weight", "l6/kernel": "6.weight",
             "l6/bias": "6.bias"}  # fmt: skip
EQX_NAMES = {k.replace("kernel", "weight"): v for k, v in NNX_NAMES.items()}


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("config", ["delta", "no_delta", "odd_sizes"])
def test_nnx_state_with_eval_shape_base_matches_the_reference(config, optimizer):
    from flax import nnx

    base, delta, target = CONFIGS[config]
    expected = reference_multipliers(torch_model("mlp", config), optimizer)

    def shape(size: tuple[int, int] | None) -> Any:
        if size is None:
            return None
        return nnx.state(nnx.eval_shape(lambda: nnx_mlp(*size)), nnx.Param)

    params = nnx.state(nnx_mlp(*target), nnx.Param)
    got = mup_shapes(params, shape(base), shape(delta))  # auto: [in, out]
    assert {NNX_NAMES[p]: s.lr_multiplier(optimizer) for p, s in got.items()} == expected
    wrong = mup_shapes(params, shape(base), shape(delta), layout="out_in")
    assert {NNX_NAMES[p]: s.lr_multiplier(optimizer) for p, s in wrong.items()} != expected


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("config", ["delta", "no_delta", "odd_sizes"])
def test_equinox_module_with_eval_shape_base_matches_the_reference(config, optimizer):
    import equinox as eqx

    base, delta, target = CONFIGS[config]
    expected = reference_multipliers(torch_model("mlp", config), optimizer)

    def shape(size: tuple[int, int] | None) -> Any:
        if size is None:
            return None
        return jax.eval_shape(lambda: eqx.filter(eqx_mlp(*size), eqx.is_inexact_array))

    params = eqx.filter(eqx_mlp(*target), eqx.is_inexact_array)
    got = mup_shapes(params, shape(base), shape(delta))  # auto: [out, in]
    assert {EQX_NAMES[p]: s.lr_multiplier(optimizer) for p, s in got.items()} == expected
    # The unfiltered abstract module works as the base too: its function leaf is skipped.
    unfiltered = jax.eval_shape(lambda: eqx_mlp(*base))
    again = mup_shapes(params, unfiltered, shape(delta))
    assert {EQX_NAMES[p]: s.lr_multiplier(optimizer) for p, s in again.items()} == expected
    wrong = mup_shapes(params, shape(base), shape(delta), layout="in_out")
    assert {EQX_NAMES[p]: s.lr_multiplier(optimizer) for p, s in wrong.items()} != expected


def test_equinox_training_step_with_filter_grads():
    """``eqx.filter_grad`` gradients go through the chain; updates = multiplier x Adam's."""
    import equinox as eqx

    model = eqx_mlp(12, 48)
    base = jax.eval_shape(lambda: eqx.filter(eqx_mlp(4, 8), eqx.is_inexact_array))
    params = eqx.filter(model, eqx.is_inexact_array)
    tx = optax.chain(optax.adam(1e-2), scale_by_mup(base, "adam"))

    @eqx.filter_grad
    def grad(m: Any) -> jax.Array:
        h = jax.nn.relu(m.l2(jax.nn.relu(m.l0(jnp.ones(D_IN)))))
        return jnp.sum(m.l6(jax.nn.relu(m.l4(h))) ** 2)

    g = grad(model)
    updates, _ = tx.update(g, tx.init(params), params)
    plain, _ = optax.adam(1e-2).update(g, optax.adam(1e-2).init(params), params)
    np.testing.assert_allclose(updates.l2.weight, plain.l2.weight / 3.0, rtol=2 * U32)
    np.testing.assert_allclose(updates.l4.weight, plain.l4.weight / 6.0, rtol=2 * U32)
    np.testing.assert_array_equal(updates.l0.weight, plain.l0.weight)
    eqx.apply_updates(model, updates)


# ------------------------------------------------ jit, vmap, inject_hyperparams


def mixed_problem(layout: str = "in_out") -> tuple[Any, Any, list[Any]]:
    model = torch_model("mixed", "delta")
    params = jax_tree(torch_arrays(model), layout)
    grads = [jax_tree(g, layout) for g in random_grads(model, 3, seed=5)]
    return params, jax_shapes("mixed", CONFIGS["delta"][0], layout), grads


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_jit_equals_eager(optimizer):
    params, base, grads = mixed_problem()
    inner = optax.adam(LR) if optimizer == "adam" else optax.sgd(LR, momentum=MOMENTUM)
    tx = optax.chain(inner, scale_by_mup(base, optimizer))
    eager = optax_run(tx, params, grads)

    @jax.jit
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    p, s, jitted = params, jax.jit(tx.init)(params), []
    for g in grads:
        p, s = step(p, s, g)
        jitted.append(p)
    mults = {n: m.lr_multiplier(optimizer) for n, m in mup_shapes(params, base).items()}
    assert_steps_close(jitted, eager, params, grads, mults, optimizer)


def test_vmap_over_stacked_params_equals_a_loop():
    """Four copies stacked on a leading axis; each copy sees its unstacked shapes."""
    params, base, grads = mixed_problem()
    copies = 4
    scales = jnp.linspace(0.5, 2.0, copies)
    stack = lambda x, c: x[None] * c.reshape((-1,) + (1,) * x.ndim)
    stacked = jax.tree.map(lambda x: stack(x, scales), params)
    stacked_grads = [jax.tree.map(lambda x: stack(x, scales[::-1]), g) for g in grads]
    tx = optax.chain(optax.adam(LR), scale_by_mup(base, "adam"))

    @jax.jit
    def run(p, gs):
        s, out = jax.vmap(tx.init)(p), []
        for g in gs:
            u, s = jax.vmap(tx.update)(g, s, p)
            p = optax.apply_updates(p, u)
            out.append(p)
        return out

    got = run(stacked, stacked_grads)
    mults = {n: m.lr_multiplier("adam") for n, m in mup_shapes(params, base).items()}
    for i in range(copies):
        one = jax.tree.map(lambda x: x[i], stacked)
        one_grads = [jax.tree.map(lambda x: x[i], g) for g in stacked_grads]
        want = optax_run(tx, one, one_grads)
        mine = [jax.tree.map(lambda x: x[i], p) for p in got]
        assert_steps_close(mine, want, one, one_grads, mults, "adam")


def test_inject_hyperparams():
    """The rate injected around the chain, and scale_by_mup injected on its own."""
    params, base, grads = mixed_problem()
    plain = optax.chain(optax.adam(LR), scale_by_mup(base, "adam"))
    want = optax_run(plain, params, grads)

    around = optax.inject_hyperparams(
        lambda learning_rate: optax.chain(optax.adam(learning_rate), scale_by_mup(base, "adam"))
    )(learning_rate=LR)
    inside = optax.chain(optax.adam(LR), optax.inject_hyperparams(scale_by_mup)(base, "adam"))
    mults = {n: m.lr_multiplier("adam") for n, m in mup_shapes(params, base).items()}
    for tx in (around, inside):
        assert_steps_close(optax_run(tx, params, grads), want, params, grads, mults, "adam")
    state = around.init(params)
    assert float(lrjax.get_learning_rate(state)) == pytest.approx(LR)


# ------------------------------------------------------ identity at the base


@st.composite
def shape_trees(draw: Any) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Leaf shapes of rank 0 to 4, and delta shapes differing on at most two axes."""
    n = draw(st.integers(1, 5))
    dims = st.lists(st.integers(1, 6), max_size=4)
    shapes = {f"p{i}": tuple(draw(dims)) for i in range(n)}
    grow = st.integers(0, 3)
    delta = {k: tuple(d + draw(grow) for d in s[:2]) + s[2:] for k, s in shapes.items()}
    return shapes, delta


@given(shape_trees(), st.sampled_from(["adam", "sgd"]), st.booleans(),
       st.sampled_from(["in_out", "out_in"]))  # fmt: skip
def test_identity_at_the_base_shapes(trees, optimizer, with_delta, layout):
    shapes, delta = trees
    rng = np.random.default_rng(0)
    params = {k: jnp.asarray(rng.standard_normal(s), jnp.float32) for k, s in shapes.items()}
    base = jax.tree.map(lambda x: sds(x.shape), params)
    tx = scale_by_mup(
        base, optimizer, {k: sds(s) for k, s in delta.items()} if with_delta else None,
        layout=layout,
    )  # fmt: skip
    updates, _ = tx.update(params, tx.init(params), params)
    for k in params:
        np.testing.assert_array_equal(updates[k], params[k])
    assert all(
        s.lr_multiplier(optimizer) == 1.0 for s in mup_shapes(params, base, layout=layout).values()
    )


# --------------------------------------------------------------- bad input


def _one_line(exc: pytest.ExceptionInfo, *needles: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_bad_input_errors_name_the_argument_and_leaf():
    base = {"a": {"w": sds((4, 4))}, "b": sds((4,))}
    params = {"a": {"w": jnp.ones((8, 8))}, "b": jnp.ones(8)}
    with pytest.raises(ValueError) as e:
        scale_by_mup(base, "rmsprop")
    _one_line(e, "optimizer", "rmsprop")
    with pytest.raises(ValueError) as e:
        scale_by_mup(base, "adam", layout="torch")
    _one_line(e, "layout", "torch")
    with pytest.raises(ValueError) as e:
        scale_by_mup({"a": {"w": sds((4, 4))}, "c": sds((4,))}, "adam").init(params)
    _one_line(e, "base_shapes", "'b'", "'c'")
    with pytest.raises(ValueError) as e:
        scale_by_mup({"a": {"w": sds((4,))}, "b": sds((4,))}, "adam").init(params)
    _one_line(e, "base_shapes", "'a/w'", "rank")
    with pytest.raises(ValueError) as e:
        scale_by_mup(base, "sgd", {"a": {"w": sds((4, 4, 1))}, "b": sds((4,))})
    _one_line(e, "delta_shapes", "'a/w'", "rank")
    with pytest.raises(ValueError) as e:
        scale_by_mup(base, "sgd", {"a": {"w": sds((4, 4))}})
    _one_line(e, "delta_shapes", "'b'")
    with pytest.raises(ValueError) as e:
        mup_shapes({"t": jnp.ones((8, 8, 8))}, {"t": sds((4, 4, 4))})
    _one_line(e, "base_shapes", "'t'", "3 axes")
    with pytest.raises(ValueError) as e:
        mup_shapes({"t": jnp.ones((8, 0))}, {"t": sds((4, 2))})
    _one_line(e, "base_shapes", "'t'", "size 0")
    # Caught again at update time, inside jit: a tree the transform was not built for.
    tx = optax.chain(optax.sgd(0.1), scale_by_mup(base, "sgd"))
    state = tx.init(params)
    with pytest.raises(ValueError) as e:
        jax.jit(tx.update)({"a": {"w": jnp.ones((8, 8))}}, state)
    _one_line(e, "base_shapes", "'b'")
    with pytest.raises(ValueError) as e:
        MupShape("scalar", (), (), (), 1.0, 1.0).lr_multiplier("lamb")
    _one_line(e, "optimizer", "lamb")


# --------------------------------------------- a coordinate check (muP works)


@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-2), ("sgd", 0.1)])
def test_mup_mlp_output_moves_alike_at_every_width(optimizer, lr):
    """Three steps move the muP MLP's outputs the same at width 16 and 1024; SP's grow.

    Measured (seeds 0, 1): muP's RMS output change 0.14 / 0.12 (Adam) and 0.043 /
    0.040 (SGD) at the two widths; the standard parametrization's 0.2 -> 8 and
    0.07 -> 0.6. The bounds leave a factor 2 either way for muP and ask SP for 4.
    """
    from flax import nnx
    from mup_models import base_shapes, mup_mlp

    x = jax.random.normal(jax.random.key(1), (64, 8))
    y = jax.random.randint(jax.random.key(2), (64,), 0, 4)

    def output_change(width: int, is_mup: bool) -> float:
        model = mup_mlp(width, readout_mult=is_mup, zero_readout=is_mup)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def f(p: Any) -> jax.Array:
            return nnx.merge(graphdef, p, rest)(x)

        def loss(p: Any) -> jax.Array:
            return optax.softmax_cross_entropy_with_integer_labels(f(p), y).mean()

        inner = optax.adam(lr) if optimizer == "adam" else optax.sgd(lr)
        tx = optax.chain(inner, scale_by_mup(base_shapes(), optimizer)) if is_mup else inner

        @jax.jit
        def change(params: Any) -> jax.Array:
            state, f0 = tx.init(params), f(params)
            for _ in range(3):
                updates, state = tx.update(jax.grad(loss)(params), state, params)
                params = optax.apply_updates(params, updates)
            return jnp.sqrt(jnp.mean((f(params) - f0) ** 2))

        return float(change(params))

    mup_ratio = output_change(1024, True) / output_change(16, True)
    sp_ratio = output_change(1024, False) / output_change(16, False)
    assert 0.5 < mup_ratio < 2.0, mup_ratio
    assert sp_ratio > 4.0, sp_ratio
