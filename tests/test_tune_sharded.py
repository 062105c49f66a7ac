"""``lrjax.tune`` with the population sharded over 4 forced host devices equals one device.

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
    x = jax.random.normal(jax.random.PRNGKey(0), (12, 16, 4))
    batches = (x, jnp.sin(x.sum(-1)))
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    params = {"w1": jax.random.normal(k1, (4, 8)) * 0.5, "w2": jax.random.normal(k2, (8,)) * 0.5}

    def loss_fn(p, b):
        return jnp.mean((jnp.tanh(b[0] @ p["w1"]) @ p["w2"] - b[1]) ** 2)

    make = lambda learning_rate, b1: optax.adam(learning_rate, b1=b1)
    space = {"learning_rate": ("log", 1e-3, 10.0), "b1": [0.5, 0.9]}
    grid = Mesh(np.array(jax.devices()).reshape(2, 2), ("a", "b"))
    meshes = {"pbt": jax.devices(), "halving": grid}
    for method, mesh in meshes.items():
        # PBT without the rate test: its range keeps the diverging end, so
        # divergent members are copied over across devices; halving with it.
        kw = dict(population=8, num_steps=12, rounds=3, method=method,
                  rate=False if method == "pbt" else None)
        one = lrjax.tune(loss_fn, params, batches, make, space, **kw)
        r = lrjax.tune(loss_fn, params, batches, make, space, mesh=mesh, **kw)
        np.testing.assert_array_equal(r.history.parents, one.history.parents)
        np.testing.assert_array_equal(r.history.active, one.history.active)
        # Sharded programs fuse the per-copy reductions differently: float32
        # ulps per step, grown over 12 Adam steps near a divergence (3e-6 seen).
        np.testing.assert_allclose(r.history.scores, one.history.scores, rtol=2e-5)
        np.testing.assert_allclose(r.losses, one.losses, rtol=2e-5, atol=1e-8)
        for a, b in zip(jax.tree.leaves(r.params), jax.tree.leaves(one.params)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        if method == "halving":  # the rate test ran sharded, with the same numbers
            np.testing.assert_allclose(r.rate_range, one.rate_range, rtol=1e-6)
            np.testing.assert_allclose(r.rate_test.scores, one.rate_test.scores, rtol=1e-6)
        if method == "pbt":  # members were copied across devices, divergent ones first
            assert (r.history.parents != np.arange(8)).any()
            assert np.isinf(r.history.scores).any()
    # Halving on 4 devices, 4 members: both rounds are padded to 4 wide, so the
    # round computes members that stopped; their rows of aux are still those of
    # idle members (NaN floats, 0 integers), as on one device.
    def aux_loss(p, b):
        loss = loss_fn(p, b)
        return loss, {"loss": loss, "count": jnp.int32(7), "positive": loss > 0}

    kw = dict(population=4, num_steps=12, rounds=2, method="halving", has_aux=True)
    one = lrjax.tune(aux_loss, params, batches, make, space, **kw)
    r = lrjax.tune(aux_loss, params, batches, make, space, mesh=jax.devices(), **kw)
    idle = ~np.repeat(one.history.active, 6, axis=0).T
    assert idle.any() and (one.aux["count"][idle] == 0).all()
    np.testing.assert_allclose(r.aux["loss"], one.aux["loss"], rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(r.aux["count"], one.aux["count"])
    np.testing.assert_array_equal(r.aux["positive"], one.aux["positive"])
    try:
        lrjax.tune(loss_fn, params, batches, make, space, population=6, num_steps=12,
                   rounds=3, mesh=jax.devices())
    except ValueError as e:
        assert "multiple of the mesh's 4 devices" in str(e), e
    else:
        raise AssertionError("population=6 on 4 devices: no error")
    print("SHARDED-OK")
    """
)


def test_sharded_population_equals_single_device():
    assert "SHARDED-OK" in run_on_host_devices(SCRIPT, devices=4)


TRANSFER_SCRIPT = textwrap.dedent(
    """
    import warnings
    import jax, jax.numpy as jnp, numpy as np, optax
    import lrjax

    assert jax.device_count() == 4, jax.devices()
    warnings.simplefilter("ignore", RuntimeWarning)
    x = jax.random.normal(jax.random.PRNGKey(0), (20, 16, 4))
    batches = (x, jnp.tanh(x).sum(-1))

    def mlp(width, key):
        k1, k2 = jax.random.split(key)
        return {"w": jax.random.normal(k1, (4, width)) / 2,
                "v": jax.random.normal(k2, (width,)) / jnp.sqrt(width)}

    loss = lambda p, b: jnp.mean((jnp.tanh(b[0] @ p["w"]) @ p["v"] - b[1]) ** 2)
    kw = dict(sizes=[4, 8, 16], target=64, num_steps=20, num_lrs=6, min_lr=1e-3, max_lr=3.0,
              seeds=2, progress=False)
    one = lrjax.transfer(loss, mlp, batches, optax.adam, **kw)
    r = lrjax.transfer(loss, mlp, batches, optax.adam, mesh=jax.devices(), **kw)
    for a, b in zip(r.sweeps, one.sweeps):
        # each size's copies split over the devices: float32 ulps per step
        np.testing.assert_allclose(a.losses, b.losses, rtol=2e-5, atol=1e-8)
    np.testing.assert_allclose(r.optima, one.optima, rtol=1e-4)
    assert r.rule == one.rule
    print("TRANSFER-SHARDED-OK")
    """
)


def test_transfer_on_a_mesh_equals_one_device():
    assert "TRANSFER-SHARDED-OK" in run_on_host_devices(TRANSFER_SCRIPT, devices=4)
