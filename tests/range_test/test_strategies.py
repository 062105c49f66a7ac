"""Execution strategies give the same numbers; programs compile once per structure.

``"scan"`` runs every step inside one compiled loop, ``"blocks"`` compiles a
straight-line block of steps and dispatches it block after block. Both do the
same float32 arithmetic in a different order of fused kernels, so results
agree to rounding, not bit for bit: over these short runs (at most 24 steps of
small models) the accumulated difference stays near 1e-6 relative; rtol=1e-4
leaves room for other CPUs' vector code while any real difference (a skipped
step, a wrong rate, a misplaced evaluation) changes losses at the 1e-2 level.
Divergence is provoked by rates far above the stable range, so the stop step
is decided by orders of magnitude, not by rounding, and is compared exactly.
"""

from __future__ import annotations

import functools
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from oracles import count_compiles, run_on_host_devices

import lrjax

nnx = pytest.importorskip("flax.nnx")

RTOL, ATOL = 1e-4, 1e-6


def close(a, b, what):
    if jnp.issubdtype(jnp.result_type(a), jax.dtypes.prng_key):  # RNG streams: exactly
        np.testing.assert_array_equal(jax.random.key_data(a), jax.random.key_data(b), what)
        return
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL, err_msg=what)


def mlp_problem(steps=24):
    x = jax.random.normal(jax.random.PRNGKey(0), (steps, 16, 4))
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    params = {"w1": jax.random.normal(k1, (4, 8)) * 0.5, "w2": jax.random.normal(k2, (8,)) * 0.5}

    def loss_fn(p, b):
        pred = jnp.tanh(b[0] @ p["w1"]) @ p["w2"]
        loss = jnp.mean((pred - b[1]) ** 2)
        return loss, {"pred_mean": pred.mean()}

    return loss_fn, params, (x, jnp.sin(x.sum(-1)))


class SmallCNN(nnx.Module):
    """Conv + BatchNorm + Dropout + a pooling partial kept as an attribute (as in
    Flax's NNX MNIST tutorial): a new ``partial`` object in every model built.

    The convolution has no bias: BatchNorm cancels it, so its gradient is pure
    rounding noise, which Adam scales up to full-size steps; the bias (and the
    running mean it feeds, hence the evaluation) would then differ between any
    two differently fused programs by far more than rounding.
    """

    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, kernel_size=(3, 3), use_bias=False, rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.dropout = nnx.Dropout(0.2, rngs=rngs)
        self.pool = functools.partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.head = nnx.Linear(4 * 2 * 2, 3, rngs=rngs)

    def __call__(self, x):
        x = self.pool(nnx.relu(self.bn(self.conv(x))))
        return self.head(self.dropout(x.reshape(x.shape[0], -1)))


def cnn_loss(model, batch):
    x, y = batch
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def cnn_data(steps=12):
    x = jax.random.normal(jax.random.PRNGKey(2), (steps, 8, 4, 4, 1))
    y = jax.random.randint(jax.random.PRNGKey(3), (steps, 8), 0, 3)
    return x, y


def assert_same_run(a, b):
    close(a.losses, b.losses, "losses")
    close(a.smoothed, b.smoothed, "smoothed")
    np.testing.assert_array_equal(a.stop_step, b.stop_step)
    for name in ("val_losses", "val_curves"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            close(x, y, name)
    jax.tree.map(lambda x, y: close(x, y, "aux"), a.aux, b.aux)
    jax.tree.map(lambda x, y: close(x, y, "params"), a.params, b.params)
    jax.tree.map(lambda x, y: close(x, y, "state"), a.state, b.state)


def test_strategies_agree_on_a_plain_model_with_everything_on():
    loss_fn, params, batches = mlp_problem()
    val = jax.tree.map(lambda x: x[:3], batches)
    kw = dict(min_lr=1e-3, max_lr=1e3, num_lrs=6, num_steps=24, val_batches=val,
              eval_every=6, has_aux=True, return_params=True, progress=False)  # fmt: skip
    runs = {
        s: lrjax.range_test(loss_fn, params, batches, optax.sgd, strategy=s, **kw)
        for s in ("scan", "blocks", "sequential")
    }
    assert all(r.strategy == s for s, r in runs.items())
    scan = runs["scan"]
    assert scan.diverged.any() and not scan.diverged.all()  # both sides of the freeze
    assert scan.val_curves.shape == (1, 6, 4)
    assert_same_run(scan, runs["blocks"])
    assert_same_run(scan, runs["sequential"])
    # chunked, and an odd number of steps
    chunked = lrjax.range_test(loss_fn, params, batches, optax.sgd, strategy="blocks",
                               chunk_size=4, **kw)  # fmt: skip
    assert_same_run(scan, chunked)
    kw_odd = {**kw, "num_steps": 23, "eval_every": None}
    odd = [lrjax.range_test(loss_fn, params, batches, optax.sgd, strategy=s, **kw_odd)
           for s in ("scan", "blocks")]  # fmt: skip
    assert_same_run(*odd)


def test_strategies_agree_on_streamed_and_callable_batches():
    loss_fn, params, (x, y) = mlp_problem()
    stream = [(x[i], y[i]) for i in range(24)]
    fn = lambda t: (x[t], y[t])
    kw = dict(min_lr=1e-2, max_lr=1e2, num_lrs=4, num_steps=24, has_aux=True, progress=False)
    ref = lrjax.range_test(loss_fn, params, (x, y), optax.adam, strategy="scan", **kw)
    for batches in (stream, fn):
        for s in ("scan", "blocks", "sequential"):
            got = lrjax.range_test(loss_fn, params, batches, optax.adam, strategy=s, **kw)
            assert_same_run(ref, got)


def test_strategies_agree_on_an_nnx_cnn_with_batchnorm_and_dropout():
    model = SmallCNN(nnx.Rngs(0))
    batches = cnn_data()
    val = jax.tree.map(lambda a: a[:2], batches)
    kw = dict(min_lr=1e-3, max_lr=1e2, num_lrs=4, num_steps=12, val_batches=val,
              eval_every=4, return_params=True, progress=False)  # fmt: skip
    scan = lrjax.range_test(cnn_loss, model, batches, optax.adam, strategy="scan", **kw)
    for s in ("blocks", "sequential"):  # the Dropout streams and BatchNorm statistics too
        assert_same_run(scan, lrjax.range_test(cnn_loss, model, batches, optax.adam, strategy=s,
                                               **kw))  # fmt: skip
    assert scan.diverged.any() and not scan.diverged.all()


def test_lr_find_and_sweep_run_every_strategy():
    loss_fn, params, batches = mlp_problem()
    plain = lambda p, b: loss_fn(p, b)[0]
    ramps = [lrjax.lr_find(plain, params, batches, optax.sgd, min_lr=1e-3, max_lr=1e3,
                           num_steps=24, strategy=s) for s in ("scan", "blocks")]  # fmt: skip
    close(ramps[0].losses, ramps[1].losses, "lr_find losses")
    assert ramps[0].stop_step == ramps[1].stop_step > 0
    grid = {"learning_rate": [0.01, 0.1, 10.0], "b1": [0.5, 0.9]}
    make = lambda learning_rate, b1: optax.adam(learning_rate, b1=b1)
    sweeps = [lrjax.sweep(plain, params, batches, make, grid, num_steps=24, strategy=s)
              for s in ("scan", "blocks")]  # fmt: skip
    close(sweeps[0].losses, sweeps[1].losses, "sweep losses")
    np.testing.assert_array_equal(sweeps[0].stop_step, sweeps[1].stop_step)


def test_auto_runs_convolutions_and_large_steps_sequentially_on_a_cpu_only():
    loss_fn, params, batches = mlp_problem()
    plain = lambda p, b: loss_fn(p, b)[0]
    mlp = lrjax.range_test(plain, params, batches, num_lrs=2, num_steps=4, progress=False)
    cnn = lrjax.range_test(cnn_loss, SmallCNN(nnx.Rngs(0)), cnn_data(), num_lrs=2, num_steps=4,
                           progress=False)  # fmt: skip
    # a dense step of 2 * 64 * 1024 * 1024 = 1.3e8 FLOPs: past SEQUENTIAL_FLOPS (1e8)
    x = jnp.ones((2, 64, 1024))
    wide = lambda w, b: jnp.mean((b @ w) ** 2)
    big = lrjax.range_test(wide, jnp.zeros((1024, 1024)), x, num_lrs=2, num_steps=2,
                           progress=False)  # fmt: skip
    on_cpu = jax.devices()[0].platform == "cpu"
    assert mlp.strategy == "scan"
    assert cnn.strategy == big.strategy == ("sequential" if on_cpu else "scan")


def test_a_freshly_built_model_of_the_same_structure_compiles_nothing():
    """Programs are keyed on the model's structure, not on the object: a second call
    with a new model (new parameters, a new ``partial`` attribute) compiles nothing."""
    batches = cnn_data(8)
    kw = dict(num_steps=8, progress=False)
    sgd_grid = lambda learning_rate: optax.sgd(learning_rate)  # the same functions each call
    sgd_lr = lambda lr: optax.sgd(lr)
    calls = {
        "range_test": lambda m: lrjax.range_test(
            cnn_loss, m, batches, min_lr=1e-3, max_lr=1.0, num_lrs=3, **kw),
        "lr_find": lambda m: lrjax.lr_find(cnn_loss, m, batches, **kw),
        "sweep": lambda m: lrjax.sweep(
            cnn_loss, m, batches, sgd_grid, {"learning_rate": [0.01, 0.1]}, **kw),
        "tune": lambda m: lrjax.tune(
            cnn_loss, m, batches, sgd_lr, {"lr": ("log", 1e-3, 1.0)}, population=4, rounds=2,
            **kw),
    }  # fmt: skip
    for name, call in calls.items():
        assert count_compiles(lambda c=call: c(SmallCNN(nnx.Rngs(0))), "") > 0, name
        again = count_compiles(lambda c=call: c(SmallCNN(nnx.Rngs(1))), "")
        assert again == 0, f"{name}: {again} programs compiled for a new model"

    # another structure is another program
    class Wider(SmallCNN):
        def __init__(self, rngs):
            super().__init__(rngs)
            self.head = nnx.Linear(16, 5, rngs=rngs)

    assert count_compiles(lambda: calls["range_test"](Wider(nnx.Rngs(0))), "") > 0


def test_functions_written_anew_for_each_call_compile_nothing():
    """The loss, evaluation and optimizer are keyed by code and closure, not by
    object: lambdas written inside each call (a loop, a re-run notebook cell)
    reuse the program; one closing over another value compiles its own and
    gives its own numbers (the brute-force reference: the same call with
    module-level functions)."""
    batches = cnn_data(8)
    model = lambda: SmallCNN(nnx.Rngs(0))
    kw = dict(num_steps=8, progress=False)

    def calls(decay):
        loss = lambda m, b: cnn_loss(m, b)
        evaluate = lambda m, b: cnn_loss(m, b)
        opt = lambda lr: optax.adamw(lr, weight_decay=decay)
        sweep_opt = lambda learning_rate: optax.adamw(learning_rate, weight_decay=decay)
        return {
            "range_test": lambda: lrjax.range_test(
                loss, model(), batches, opt, min_lr=1e-3, max_lr=1.0, num_lrs=3,
                eval_fn=evaluate, **kw),
            "lr_find": lambda: lrjax.lr_find(loss, model(), batches, opt, **kw),
            "sweep": lambda: lrjax.sweep(
                loss, model(), batches, sweep_opt, {"learning_rate": [0.01, 0.1]}, **kw),
            "tune": lambda: lrjax.tune(
                loss, model(), batches, opt, {"lr": ("log", 1e-3, 1.0)}, population=4,
                rounds=2, **kw),
        }  # fmt: skip

    for name in calls(0.1):
        assert count_compiles(calls(0.1)[name], "") > 0, name
        again = count_compiles(calls(0.1)[name], "")
        assert again == 0, f"{name}: {again} programs compiled for functions written anew"
    # another closed-over value is another program, with its own numbers
    assert count_compiles(calls(10.0)["range_test"], "") > 0
    strong, weak = calls(10.0)["range_test"](), calls(0.1)["range_test"]()
    reference = lrjax.range_test(
        cnn_loss, model(), batches, lambda lr: optax.adamw(lr, weight_decay=10.0),
        min_lr=1e-3, max_lr=1.0, num_lrs=3, eval_fn=cnn_loss, **kw,
    )  # fmt: skip
    np.testing.assert_allclose(strong.losses, reference.losses, rtol=1e-5)
    assert not np.allclose(strong.losses, weak.losses)


def test_a_loss_closing_over_a_list_runs_its_own_program():
    """Keyed by structure, a closed-over list is still compared by identity (as
    ``jax.jit`` compares the function): two losses of the same code, each
    recording into its own list from a host callback, fill their own alike.
    By contents, the second (empty) list would equal
    the first and reuse a program that appends to the first."""
    loss_fn, params, batches = mlp_problem(steps=6)

    def run():
        seen = []

        def recorded(p, b):
            jax.debug.callback(lambda: seen.append(1))
            return loss_fn(p, b)

        lrjax.range_test(recorded, params, batches, num_lrs=2, num_steps=6, has_aux=True,
                         progress=False)  # fmt: skip
        return len(seen)

    first, second = run(), run()
    assert first == second > 0


MESH_SCRIPT = textwrap.dedent(
    """
    import functools
    import jax, jax.numpy as jnp, numpy as np, optax
    from flax import nnx
    import lrjax

    class CNN(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(1, 4, kernel_size=(3, 3), use_bias=False, rngs=rngs)
            self.bn = nnx.BatchNorm(4, rngs=rngs)
            self.dropout = nnx.Dropout(0.2, rngs=rngs)
            self.head = nnx.Linear(4 * 4 * 4, 3, rngs=rngs)

        def __call__(self, x):
            x = nnx.relu(self.bn(self.conv(x)))
            return self.head(self.dropout(x.reshape(x.shape[0], -1)))

    def loss_fn(model, batch):
        return optax.softmax_cross_entropy_with_integer_labels(model(batch[0]), batch[1]).mean()

    x = jax.random.normal(jax.random.PRNGKey(2), (8, 8, 4, 4, 1))
    y = jax.random.randint(jax.random.PRNGKey(3), (8, 8), 0, 3)
    kw = dict(min_lr=1e-3, max_lr=1e2, num_lrs=4, num_steps=8, val_batches=(x[:2], y[:2]),
              eval_every=4, progress=False)
    runs = {(s, m): lrjax.range_test(loss_fn, CNN(nnx.Rngs(0)), (x, y), optax.adam, strategy=s,
                                     mesh=jax.devices() if m else None, **kw)
            for s in ("scan", "blocks", "sequential") for m in (False, True)}
    ref = runs[("scan", False)]
    for key, r in runs.items():
        np.testing.assert_allclose(r.losses, ref.losses, rtol=1e-4, atol=1e-6, err_msg=str(key))
        np.testing.assert_allclose(r.val_curves, ref.val_curves, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(r.stop_step, ref.stop_step)
        assert r.strategy == key[0]
    print("ok", ref.diverged.sum())
    """
)


def test_strategies_agree_on_a_mesh():
    out = run_on_host_devices(MESH_SCRIPT, devices=4)
    assert out.startswith("ok")


# ---------------------------------------------------------------------- tune

STRATEGIES = ("scan", "blocks", "sequential")


def assert_same_search(a, b, what):
    """Two searches: the same members kept, trained to the same numbers."""
    np.testing.assert_array_equal(a.history.active, b.history.active, what)
    np.testing.assert_array_equal(a.history.parents, b.history.parents, what)
    for name in a.names:
        close(a.history.values[name], b.history.values[name], f"{what}: {name}")
    close(a.losses, b.losses, what)
    close(a.history.scores, b.history.scores, what)
    assert a.best_index == b.best_index and a.best.keys() == b.best.keys(), what
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        close(x, y, f"{what}: params")


@pytest.mark.parametrize("method", ["halving", "pbt", "random"])
def test_tune_gives_the_same_search_with_every_strategy(method):
    """Rates well inside the stable range, so that ranks are decided by more than
    rounding: each strategy keeps the same members, trains them alike."""
    loss_fn, params, batches = mlp_problem(24)
    plain = lambda p, b: loss_fn(p, b)[0]
    space = {"lr": ("log", 1e-3, 0.05), "momentum": [0.0, 0.5, 0.9]}
    make = lambda lr, momentum: optax.sgd(lr, momentum=momentum)
    val = (batches[0][:2], batches[1][:2])
    kw = dict(population=8, num_steps=24, method=method, progress=False, rate=False,
              rounds=None if method == "random" else 3, val_batches=val)  # fmt: skip
    runs = {s: lrjax.tune(plain, params, batches, make, space, strategy=s, **kw)
            for s in STRATEGIES}  # fmt: skip
    for s, r in runs.items():
        assert r.strategy == s
        if s != "scan":
            assert_same_search(runs["scan"], r, f"{method}, {s}")


def test_tune_strategies_agree_on_streamed_batches_and_an_nnx_cnn():
    """BatchNorm statistics and Dropout streams carried through host-driven rounds,
    the rate test and the cooldown probe included; batches read from a stream."""
    model = SmallCNN(nnx.Rngs(0))
    x, y = cnn_data(12)
    stream = lambda: ((x[t], y[t]) for t in range(12))
    space = {"learning_rate": ("log", 1e-3, 3e-2)}
    kw = dict(population=4, num_steps=12, rounds=2, progress=False, cooldown_steps=2)
    scan = lrjax.tune(cnn_loss, model, (x, y), optax.adam, space, strategy="scan", **kw)
    for s in ("blocks", "sequential"):
        got = lrjax.tune(cnn_loss, model, stream(), optax.adam, space, strategy=s, **kw)
        assert_same_search(scan, got, s)
        close(scan.rate_test.scores, got.rate_test.scores, s)
        assert scan.rate_range == pytest.approx(got.rate_range, rel=1e-5)
