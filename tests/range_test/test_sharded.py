"""Sharding the rate axis over 4 forced host devices equals the one-device run.

Runs in a subprocess: the device count must be set before JAX starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

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
    print("SHARDED-OK")
    """
)


def test_sharded_equals_single_device():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "SHARDED-OK" in proc.stdout
