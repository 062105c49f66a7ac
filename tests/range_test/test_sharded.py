"""Sharding the rate axis over 4 forced host devices equals the one-device run.

Runs in a subprocess: the device count must be set before JAX starts.
"""

from __future__ import annotations

import textwrap

from oracles import run_on_host_devices

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, optax
    from jax.sharding import Mesh
    import lrjax

    assert jax.device_count() == 4, jax.devices()
    x = jax.random.normal(jax.random.PRNGKey(0), (10, 16, 4))
    batches = (x, jnp.sin(x.sum(-1)))
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    params = {"w1": jax.random.normal(k1, (4, 8)) * 0.5, "w2": jax.random.normal(k2, (8,)) * 0.5}

    def loss_fn(p, b):
        return jnp.mean((jnp.tanh(b[0] @ p["w1"]) @ p["w2"] - b[1]) ** 2)

    kw = dict(min_lr=1e-3, max_lr=1e3, num_lrs=6, num_steps=10)
    one = lrjax.range_test(loss_fn, params, batches, optax.adam, **kw)
    assert one.diverged.any() and not one.diverged.all()
    runs = {
        "devices": lrjax.range_test(loss_fn, params, batches, optax.adam, mesh=jax.devices(), **kw),
        "mesh2x2": lrjax.range_test(
            loss_fn, params, batches, optax.adam,
            mesh=Mesh(np.array(jax.devices()).reshape(2, 2), ("a", "b")), **kw),
        "chunked": lrjax.range_test(
            loss_fn, params, batches, optax.adam, mesh=jax.devices(), chunk_size=3, **kw),
    }
    for name, r in runs.items():
        np.testing.assert_allclose(r.losses, one.losses, rtol=1e-6, atol=1e-8, err_msg=name)
        np.testing.assert_array_equal(r.stop_step, one.stop_step, err_msg=name)
        np.testing.assert_array_equal(r.status, one.status, err_msg=name)
    # the sweep shares the engine: a sharded grid too
    s1 = lrjax.sweep(loss_fn, params, batches, lambda b1: optax.adam(0.01, b1=b1),
                     {"b1": [0.5, 0.7, 0.9]})
    s4 = lrjax.sweep(loss_fn, params, batches, lambda b1: optax.adam(0.01, b1=b1),
                     {"b1": [0.5, 0.7, 0.9]}, mesh=jax.devices())
    np.testing.assert_allclose(s4.losses, s1.losses, rtol=1e-6, atol=1e-8)

    # A stateful model (BatchNorm statistics, Dropout RNG streams) with
    # validation data, streamed batches and returned parameters: the state and
    # the per-copy keys are sharded with the copies, the results are the same.
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(4, 8, rngs=rngs)
            self.bn = nnx.BatchNorm(8, rngs=rngs)
            self.do = nnx.Dropout(0.3, rngs=rngs)
            self.l2 = nnx.Linear(8, 1, rngs=rngs)

        def __call__(self, x):
            return self.l2(self.do(nnx.relu(self.bn(self.l1(x)))))[:, 0]

    def nnx_loss(m, b):
        return jnp.mean((m(b[0]) - b[1]) ** 2)

    model = Net(nnx.Rngs(0))
    val = (x[:2] + 1.0, batches[1][:2])
    listed = [(np.asarray(x[t]), np.asarray(batches[1][t])) for t in range(10)]
    # SGD: a sharded program may sum in another order (a last-bit difference);
    # Adam's normalised steps turn last-bit differences of near-zero gradients
    # (BatchNorm's) into rate-sized ones, SGD keeps them at float32 rounding.
    kw = dict(min_lr=1e-3, max_lr=0.1, num_lrs=6, num_steps=10, val_batches=val, eval_every=5,
              return_params=True)
    one = lrjax.range_test(nnx_loss, model, batches, optax.sgd, **kw)
    devices = jax.devices()
    for name, r in {
        "nnx devices": lrjax.range_test(nnx_loss, model, batches, optax.sgd, mesh=devices, **kw),
        "nnx streamed": lrjax.range_test(nnx_loss, model, listed, optax.sgd, mesh=jax.devices(),
                                         chunk_size=4, **kw),
    }.items():
        np.testing.assert_allclose(r.losses, one.losses, rtol=1e-5, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(r.val_losses, one.val_losses, rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(r.val_curves, one.val_curves, rtol=1e-5, err_msg=name)
        for a, b in zip(jax.tree.leaves(r.params), jax.tree.leaves(one.params)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)
    print("SHARDED-OK")
    """
)


def test_sharded_equals_single_device():
    assert "SHARDED-OK" in run_on_host_devices(SCRIPT, devices=4)
