"""A loss must be computed from what it is given; programs are keyed on what they compute.

- A ``loss_fn`` that closes over the model and ignores its first argument (a
  common first attempt with NNX: ``lambda m, batch: loss(model, batch)``) would
  train nothing and mark every rate ``slow``. It is refused before training,
  from the traced program, for every model kind and every front, with one line
  saying what to do.
- Compiled programs are reused for models of the same structure; two models of
  one structure whose functions close over different values (an activation's
  slope) compute different things, so each must give its own numbers: equal to
  a hand-written loop over that model, whichever ran first.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax

nnx = pytest.importorskip("flax.nnx")
linen = pytest.importorskip("flax.linen")
eqx = pytest.importorskip("equinox")

T = 6
X = jax.random.normal(jax.random.PRNGKey(0), (T, 16, 3))
BATCHES = (X, jnp.sin(X).sum(-1, keepdims=True))
RUN = dict(min_lr=0.01, max_lr=0.5, num_lrs=3, num_steps=T, progress=False)
#: Rates every copy trains at without diverging, so every step compares with the loop.
STABLE = {**RUN, "min_lr": 0.003, "max_lr": 0.1}


class Net(nnx.Module):
    def __init__(self, rngs, dropout=0.0, slope=0.01, form="partial"):
        self.hidden = nnx.Linear(3, 8, rngs=rngs)
        self.out = nnx.Linear(8, 1, rngs=rngs)
        self.drop = nnx.Dropout(dropout, rngs=rngs)
        # a function made in __init__ holding a value (as Flax's tutorials write)
        if form == "partial":
            self.act = functools.partial(nnx.leaky_relu, negative_slope=slope)
        else:
            self.act = lambda x: nnx.leaky_relu(x, negative_slope=slope)

    def __call__(self, x):
        return self.out(self.drop(self.act(self.hidden(x))))


def models():
    """``(name, model, loss that closes over a copy of the model, loss as it should be)``."""
    w = jnp.zeros((3, 1))
    plain_loss = lambda p, b: jnp.mean((b[0] @ p - b[1]) ** 2)
    net = Net(nnx.Rngs(0))
    nnx_loss = lambda m, b: jnp.mean((m(b[0]) - b[1]) ** 2)
    dense = linen.Dense(1)
    variables = dense.init(jax.random.PRNGKey(0), X[0])
    linen_loss = lambda apply, b: jnp.mean((apply(b[0]) - b[1]) ** 2)
    mlp = eqx.nn.MLP(3, 1, 8, depth=1, key=jax.random.PRNGKey(0))
    eqx_loss = lambda m, b: jnp.mean((jax.vmap(m)(b[0]) - b[1]) ** 2)
    return [
        ("plain", w, lambda p, b: plain_loss(w, b), plain_loss),
        ("nnx", net, lambda m, b: nnx_loss(net, b), nnx_loss),
        ("linen", (dense, variables),
         lambda apply, b: jnp.mean((dense.apply(variables, b[0]) - b[1]) ** 2), linen_loss),
        ("equinox", mlp, lambda m, b: eqx_loss(mlp, b), eqx_loss),
    ]  # fmt: skip


FRONTS = {
    "range_test": lambda loss, model: lrjax.range_test(loss, model, BATCHES, optax.sgd, **RUN),
    "lr_find": lambda loss, model: lrjax.lr_find(
        loss, model, BATCHES, optax.sgd, num_steps=T, progress=False
    ),
    "sweep": lambda loss, model: lrjax.sweep(
        loss, model, BATCHES, lambda lr: optax.sgd(lr), {"lr": [0.1, 0.2]}, progress=False
    ),
    "tune": lambda loss, model: lrjax.tune(
        loss,
        model,
        BATCHES,
        lambda lr: optax.sgd(lr),
        {"lr": ("log", 1e-3, 1.0)},
        population=4,
        num_steps=T,
        rounds=2,
        progress=False,
    ),
}


@pytest.mark.parametrize("front", sorted(FRONTS))
@pytest.mark.parametrize("kind", ["plain", "nnx", "linen", "equinox"])
def test_a_loss_closing_over_the_model_is_refused_in_one_line(kind, front):
    _, model, closure, proper = next(m for m in models() if m[0] == kind)
    with pytest.raises(ValueError) as info:
        FRONTS[front](closure, model)
    message = str(info.value)
    first = {"plain": "params", "nnx": "model", "linen": "apply", "equinox": "model"}[kind]
    assert message.startswith(f"loss_fn({first}, batch): the loss does not depend on the ")
    assert "first argument" in message and "\n" not in message and len(message) < 250
    if front == "range_test":  # the same model with a proper loss trains (one check serves all)
        FRONTS[front](proper, model)


def test_an_nnx_loss_mutating_a_captured_module_is_refused_in_one_line():
    """With Dropout, calling a captured module advances its RNG inside the trace."""
    net = Net(nnx.Rngs(0), dropout=0.5)
    outside = Net(nnx.Rngs(1), dropout=0.5)
    loss = lambda m, b: jnp.mean((outside(b[0]) - b[1]) ** 2)
    with pytest.raises(ValueError) as info:
        lrjax.range_test(loss, net, BATCHES, optax.sgd, **RUN)
    message = str(info.value)
    assert message.startswith("loss_fn(model, batch) mutates Flax state of a module it closes")
    assert "first argument" in message and "\n" not in message


def test_a_loss_using_only_part_of_the_parameters_trains():
    """Depending on some parameters is enough (e.g. a head trained on frozen features)."""
    params = {"used": jnp.zeros((3, 1)), "unused": jnp.ones(4)}
    loss = lambda p, b: jnp.mean((b[0] @ p["used"] - b[1]) ** 2)
    res = lrjax.range_test(loss, params, BATCHES, optax.sgd, **RUN)
    assert np.isfinite(res.scores).any()


# ------------------------------------------------ the compile cache and closures


def nnx_loop(model, rate):
    """One rate trained by hand: ``jax.jit`` of one SGD step on the split model."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optax.sgd(rate)
    loss_of = lambda p, b: jnp.mean((nnx.merge(graphdef, p, rest)(b[0]) - b[1]) ** 2)

    @jax.jit
    def step(p, opt, batch):
        loss, g = jax.value_and_grad(loss_of)(p, batch)
        u, opt = tx.update(g, opt, p)
        return optax.apply_updates(p, u), opt, loss

    opt, losses = tx.init(params), []
    for t in range(T):
        params, opt, loss = step(params, opt, jax.tree.map(lambda a, t=t: a[t], BATCHES))
        losses.append(float(loss))
    return np.array(losses)


def eqx_loop(model, rate):
    tx = optax.sgd(rate)
    loss_of = lambda m, b: jnp.mean((jax.vmap(m)(b[0]) - b[1]) ** 2)

    @eqx.filter_jit
    def step(m, opt, batch):
        loss, g = eqx.filter_value_and_grad(loss_of)(m, batch)
        u, opt = tx.update(g, opt, eqx.filter(m, eqx.is_inexact_array))
        return eqx.apply_updates(m, u), opt, loss

    opt, losses = tx.init(eqx.filter(model, eqx.is_inexact_array)), []
    for t in range(T):
        model, opt, loss = step(model, opt, jax.tree.map(lambda a, t=t: a[t], BATCHES))
        losses.append(float(loss))
    return np.array(losses)


@pytest.mark.parametrize("form", ["partial", "closure"])
def test_nnx_models_of_one_structure_closing_over_other_values_give_their_own_numbers(form):
    """The slope lives in a ``functools.partial`` or a closure the module builds:
    same graph structure, another function. A program keyed without it would
    hand the second model the first one's numbers."""
    loss = lambda m, b: jnp.mean((m(b[0]) - b[1]) ** 2)
    results = {}
    for slope in (0.01, 0.9):  # the same initial weights, only the slope differs
        model = Net(nnx.Rngs(0), slope=slope, form=form)
        results[slope] = lrjax.range_test(loss, model, BATCHES, optax.sgd, **STABLE)
        assert not results[slope].diverged.any()
        for k, rate in enumerate(results[slope].lrs):
            # rtol: a few SGD steps of a tiny model, differently fused programs
            np.testing.assert_allclose(
                results[slope].losses[0, k], nnx_loop(model, rate), rtol=1e-5, atol=1e-7
            )
    assert not np.allclose(results[0.01].losses[0, :, -1], results[0.9].losses[0, :, -1])


def test_equinox_models_of_one_structure_closing_over_other_values_give_their_own_numbers():
    loss = lambda m, b: jnp.mean((jax.vmap(m)(b[0]) - b[1]) ** 2)
    results = {}
    for slope in (0.01, 0.9):
        act = lambda x, slope=slope: jax.nn.leaky_relu(x, slope)  # a default, then a closure
        close = (lambda s: lambda x: jax.nn.leaky_relu(x, s))(slope)
        for activation in (act, close):
            model = eqx.nn.MLP(3, 1, 8, depth=1, activation=activation, key=jax.random.key(0))
            res = lrjax.range_test(loss, model, BATCHES, optax.sgd, **STABLE)
            assert not res.diverged.any()
            results[slope] = res
            for k, rate in enumerate(res.lrs):
                np.testing.assert_allclose(
                    res.losses[0, k], eqx_loop(model, rate), rtol=1e-5, atol=1e-7
                )
    assert not np.allclose(results[0.01].losses[0, :, -1], results[0.9].losses[0, :, -1])


def test_equinox_frozen_arrays_of_a_model_with_state_stay_and_the_rest_train():
    """A second Equinox fine-tuning case: BatchNorm with ``state=``, the input layer
    frozen by a filter spec; checked against a loop that trains the rest alone."""
    model, state = eqx.nn.make_with_state(BatchNormNet)(jax.random.key(2))
    spec = jax.tree.map(eqx.is_inexact_array, model)
    spec = eqx.tree_at(lambda m: (m.first.weight, m.first.bias), spec, replace=(False, False))

    def loss_fn(m, s, b):
        out, s = jax.vmap(m, in_axes=(0, None), out_axes=(0, None), axis_name="batch")(b[0], s)
        return jnp.mean((out - b[1]) ** 2), s

    res = lrjax.range_test(loss_fn, model, BATCHES, optax.sgd, state=state, trainable=spec,
                           return_params=True, **STABLE)  # fmt: skip
    assert not res.diverged.any()
    trained, frozen = eqx.partition(model, spec)
    for k, rate in enumerate(res.lrs):
        tx, p, s = optax.sgd(rate), trained, state
        opt = tx.init(p)
        for t in range(T):
            batch = jax.tree.map(lambda a, t=t: a[t], BATCHES)
            (loss, s), g = jax.value_and_grad(
                lambda q, s=s, batch=batch: loss_fn(eqx.combine(q, frozen), s, batch), has_aux=True
            )(p)
            u, opt = tx.update(g, opt, p)
            p = optax.apply_updates(p, u)
            np.testing.assert_allclose(res.losses[0, k, t], float(loss), rtol=1e-4, atol=1e-7)
        np.testing.assert_array_equal(res.params.first.weight[0, k], model.first.weight)
        np.testing.assert_allclose(res.params.last.weight[0, k], p.last.weight, rtol=1e-4,
                                   atol=1e-7)  # fmt: skip


class BatchNormNet(eqx.Module):
    first: eqx.nn.Linear
    norm: eqx.nn.BatchNorm
    last: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.first = eqx.nn.Linear(3, 8, key=k1)
        self.norm = eqx.nn.BatchNorm(8, axis_name="batch", mode="batch")
        self.last = eqx.nn.Linear(8, 1, key=k2)

    def __call__(self, x, state):
        h, state = self.norm(jnp.tanh(self.first(x)), state)
        return self.last(h), state
