"""``trainable=``: fine-tuning a part of an NNX or Equinox model.

The reference trains only the selected arrays with a hand-written loop (one
rate at a time, ``jax.jit`` of one step, Optax SGD), the others held fixed.
Losses agree to float rounding of differently fused programs (rtol 1e-4 over
a few steps of a tiny model); the frozen arrays come back bit for bit, since
no update ever touches them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrjax

nnx = pytest.importorskip("flax.nnx")
eqx = pytest.importorskip("equinox")

T, RATES = 6, (0.01, 0.1, 0.5)


def data():
    x = jax.random.normal(jax.random.PRNGKey(0), (T, 16, 4))
    return x, jnp.sin(x.sum(-1, keepdims=True))


class Net(nnx.Module):
    def __init__(self, rngs):
        self.body = nnx.Linear(4, 8, rngs=rngs)
        self.head = nnx.Linear(8, 1, rngs=rngs)

    def __call__(self, x):
        return self.head(jnp.tanh(self.body(x)))


def nnx_loss(model, batch):
    return jnp.mean((model(batch[0]) - batch[1]) ** 2)


def nnx_reference(rate):
    """Only ``head`` trained: split it off, train it with SGD, the body fixed."""
    graphdef, head, rest = nnx.split(Net(nnx.Rngs(0)), nnx.PathContains("head"), ...)
    tx = optax.sgd(rate)

    @jax.jit
    def step(head, opt, batch):
        loss, g = jax.value_and_grad(lambda h: nnx_loss(nnx.merge(graphdef, h, rest), batch))(head)
        u, opt = tx.update(g, opt, head)
        return optax.apply_updates(head, u), opt, loss

    opt, losses = tx.init(head), []
    for t in range(T):
        head, opt, loss = step(head, opt, jax.tree.map(lambda a, t=t: a[t], data()))
        losses.append(float(loss))
    return np.array(losses), head


def test_nnx_trains_only_the_selected_variables():
    model = Net(nnx.Rngs(0))
    kw = dict(min_lr=RATES[0], max_lr=RATES[-1], num_lrs=len(RATES), num_steps=T,
              return_params=True, progress=False)  # fmt: skip
    r = lrjax.range_test(nnx_loss, model, data(), optax.sgd, trainable=nnx.PathContains("head"),
                         **kw)  # fmt: skip
    body0 = np.asarray(model.body.kernel[...])
    for k, rate in enumerate(r.lrs):
        losses, head = nnx_reference(rate)
        np.testing.assert_allclose(r.losses[0, k], losses, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(
            np.asarray(r.params["head"]["kernel"][...])[0, k],
            np.asarray(head["head"]["kernel"][...]),
            rtol=1e-4,
            atol=1e-7,
        )
        # the body is carried, untouched, in the model state
        np.testing.assert_array_equal(np.asarray(r.state["body"]["kernel"][...])[0, k], body0)
    # everything trained (the default) differs from the head alone
    full = lrjax.range_test(nnx_loss, model, data(), optax.sgd, **kw)
    assert not np.allclose(full.losses[0, 1:, -1], r.losses[0, 1:, -1], rtol=1e-3)


def test_equinox_filter_spec_freezes_a_layer():
    model = eqx.nn.MLP(4, 1, 8, depth=1, key=jax.random.PRNGKey(1))
    spec = jax.tree.map(lambda _: False, model)
    spec = eqx.tree_at(lambda m: (m.layers[-1].weight, m.layers[-1].bias), spec,
                       replace=(True, True))  # fmt: skip
    loss_fn = lambda m, b: jnp.mean((jax.vmap(m)(b[0]) - b[1]) ** 2)
    r = lrjax.range_test(loss_fn, model, data(), optax.sgd, min_lr=RATES[0], max_lr=RATES[-1],
                         num_lrs=len(RATES), num_steps=T, return_params=True, trainable=spec,
                         progress=False)  # fmt: skip
    trained, frozen = eqx.partition(model, spec)
    for k, rate in enumerate(r.lrs):
        tx = optax.sgd(rate)
        p, opt = trained, tx.init(trained)
        for t in range(T):
            batch = jax.tree.map(lambda a, t=t: a[t], data())
            loss, g = jax.value_and_grad(lambda q: loss_fn(eqx.combine(q, frozen), batch))(p)
            u, opt = tx.update(g, opt, p)
            p = optax.apply_updates(p, u)
            np.testing.assert_allclose(r.losses[0, k, t], float(loss), rtol=1e-4, atol=1e-7)
        assert type(r.params) is type(model)
        np.testing.assert_allclose(r.params.layers[-1].weight[0, k], p.layers[-1].weight,
                                   rtol=1e-4, atol=1e-7)  # fmt: skip
        # the frozen layer: the model's own, broadcast over the copies
        np.testing.assert_array_equal(r.params.layers[0].weight[0, k], model.layers[0].weight)
    best = r.best_params()
    assert type(best) is type(model) and best.layers[0].weight.shape == (8, 4)


def test_trainable_bad_inputs():
    x, y = data()
    with pytest.raises(TypeError, match="trainable"):
        lrjax.range_test(lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2), jnp.zeros((4, 1)),
                         (x, y), trainable=lambda a: True, num_lrs=2, num_steps=2)  # fmt: skip
    with pytest.raises(ValueError, match="selects no"):
        lrjax.range_test(nnx_loss, Net(nnx.Rngs(0)), (x, y), trainable=nnx.PathContains("nope"),
                         num_lrs=2, num_steps=2)  # fmt: skip


def _as_state(like, pure):
    """``pure`` (a nested dict) back into the ``nnx.State`` ``like``'s structure."""
    state = jax.tree.map(lambda x: x, like)
    nnx.replace_by_pure_dict(state, pure)
    return state


def test_optimizers_see_the_parameters_as_the_users_loop_hands_them():
    """A transform that reads parameter paths (``scale_by_layer``'s regexes) sees
    an NNX model's state as a nested dict of its paths and an Equinox model's
    filtered module, as hand-written loops give them: the numbers equal such a
    loop's, and a pattern naming a layer applies to that layer only."""
    rates = {"head": 0.0, "body": 1.0}  # the head frozen by a zero multiplier
    tx = lambda lr: optax.chain(optax.sgd(lr), lrjax.scale_by_layer(rates))
    r = lrjax.range_test(nnx_loss, Net(nnx.Rngs(0)), data(), tx, min_lr=0.01, max_lr=0.1,
                         num_lrs=2, num_steps=T, return_params=True, progress=False)  # fmt: skip
    graphdef, params, rest = nnx.split(Net(nnx.Rngs(0)), nnx.Param, ...)
    for k, rate in enumerate(r.lrs):
        opt, p = tx(rate), nnx.to_pure_dict(nnx.state(Net(nnx.Rngs(0)), nnx.Param))
        state = opt.init(p)
        for t in range(T):
            batch = jax.tree.map(lambda a, t=t: a[t], data())
            merged = lambda q: nnx_loss(nnx.merge(graphdef, _as_state(params, q), rest), batch)
            loss, g = jax.value_and_grad(merged)(p)
            u, state = opt.update(g, state, p)
            p = optax.apply_updates(p, u)
            np.testing.assert_allclose(r.losses[0, k, t], float(loss), rtol=1e-4, atol=1e-7)
        head = np.asarray(r.params["head"]["kernel"][...])[0, k]
        np.testing.assert_array_equal(head, np.asarray(params["head"]["kernel"][...]))
        assert not np.allclose(np.asarray(r.params["body"]["kernel"][...])[0, k],
                               np.asarray(params["body"]["kernel"][...]))  # fmt: skip

    model = eqx.nn.MLP(4, 1, 8, depth=1, key=jax.random.PRNGKey(1))
    eqx_tx = lambda lr: optax.chain(optax.sgd(lr), lrjax.scale_by_layer({r"layers/1": 0.0}))
    loss_fn = lambda m, b: jnp.mean((jax.vmap(m)(b[0]) - b[1]) ** 2)
    r = lrjax.range_test(loss_fn, model, data(), eqx_tx, min_lr=0.01, max_lr=0.1, num_lrs=2,
                         num_steps=T, return_params=True, progress=False)  # fmt: skip
    np.testing.assert_array_equal(r.params.layers[1].weight[0, 1], model.layers[1].weight)
    assert not np.allclose(r.params.layers[0].weight[0, 1], model.layers[0].weight)
