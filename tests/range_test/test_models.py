"""Models with state and randomness, evaluation and aux outputs, against hand-written loops.

The references train one copy at a time with a Python loop of jitted single
steps, written the way a Flax or Optax user writes a training loop; they share
no code with the engine.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import lrjax

T = 12
LRS = dict(min_lr=1e-3, max_lr=0.3, num_lrs=4, num_steps=T)


class Net(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, dropout: float = 0.0, dtype=jnp.float32):
        self.l1 = nnx.Linear(4, 16, rngs=rngs, dtype=dtype)
        self.bn = nnx.BatchNorm(16, rngs=rngs, dtype=dtype)
        self.do = nnx.Dropout(dropout, rngs=rngs)
        self.l2 = nnx.Linear(16, 1, rngs=rngs, dtype=dtype)

    def __call__(self, x):
        return self.l2(self.do(nnx.relu(self.bn(self.l1(x)))))[:, 0]


def nnx_loss(model, batch):
    x, y = batch
    return jnp.mean((model(x).astype(jnp.float32) - y) ** 2)


def data(steps=T, seed=0, batch=16):
    x = jax.random.normal(jax.random.PRNGKey(seed), (steps, batch, 4))
    return x, jnp.sin(x.sum(-1))


def to_host(x):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.array(x)


def snapshot(model):
    return jax.tree.map(to_host, nnx.state(model))


def assert_same_tree(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def nnx_reference(model, batches, lr, val):
    """A user's NNX training loop: split, jitted functional step, merge."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = optax.sgd(lr)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, rest, opt_state, batch):
        def loss_fn(p):
            m = nnx.merge(graphdef, p, rest, copy=True)
            loss = nnx_loss(m, batch)
            return loss, nnx.split(m, nnx.Param, ...)[2]

        (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return loss, optax.apply_updates(params, updates), rest, opt_state

    losses = []
    for t in range(T):
        loss, params, rest, opt_state = step(
            params, rest, opt_state, jax.tree.map(lambda a: a[t], batches)
        )
        losses.append(float(loss))
    trained = nnx.merge(graphdef, params, rest, copy=True)
    trained.eval()
    vx, vy = val
    val_loss = np.mean([float(nnx_loss(trained, (vx[i], vy[i]))) for i in range(vx.shape[0])])
    return np.array(losses), val_loss, rest


def test_nnx_batchnorm_equals_hand_written_loop_and_model_is_untouched():
    model = Net(nnx.Rngs(0))
    before = snapshot(model)
    batches, val = data(), data(steps=3, seed=1)
    r = lrjax.range_test(nnx_loss, model, batches, optax.sgd, val_batches=val, **LRS)
    assert_same_tree(snapshot(model), before)  # the user's model is not mutated
    assert model.bn.use_running_average is False  # nor switched to eval mode
    assert r.val_losses.shape == (1, 4)
    for k, lr in enumerate(r.lrs):
        losses, val_loss, _ = nnx_reference(Net(nnx.Rngs(0)), batches, lr, val)
        if r.diverged[k]:
            continue
        # float32 sums in another order (vmap vs one copy): a few ulps of 1e-7 each.
        np.testing.assert_allclose(r.losses[0, k], losses, rtol=1e-4)
        np.testing.assert_allclose(r.val_losses[0, k], val_loss, rtol=1e-4)
    assert (~r.diverged).sum() >= 3
    # With val_batches the scores are the validation losses.
    np.testing.assert_allclose(r.scores[~r.diverged], r.val_losses[0][~r.diverged])
    assert r.best_lr == r.lrs[np.nanargmin(np.where(r.diverged, np.nan, r.val_losses[0]))]


@pytest.mark.parametrize("front", ["range_test", "sweep"])
def test_nnx_returned_params_and_state_rebuild_the_trained_model(front):
    """``return_params``: every copy's parameters and BatchNorm statistics equal a
    hand-written loop's; the best copy rebuilt with ``nnx.merge`` gives its
    validation loss."""
    model = Net(nnx.Rngs(0))
    batches, val = data(), data(steps=2, seed=1)
    lrs = np.geomspace(1e-3, 0.3, 4)
    kw = dict(val_batches=val, return_params=True, num_steps=T)
    if front == "range_test":
        r = lrjax.range_test(nnx_loss, model, batches, optax.sgd, **LRS | kw)
    else:
        r = lrjax.sweep(nnx_loss, model, batches, optax.sgd, {"learning_rate": lrs}, **kw)
    for k, lr in enumerate(lrs):
        *_, rest = nnx_reference(Net(nnx.Rngs(0)), batches, lr, val)
        for name in ("mean", "var"):
            got = np.asarray(r.state["bn"][name][...][0, k])
            np.testing.assert_allclose(got, np.asarray(rest["bn"][name][...]), rtol=1e-4)
    best = nnx.merge(nnx.graphdef(model), r.best_params(), r.best_state())
    best.eval()
    score = np.mean([float(nnx_loss(best, (val[0][i], val[1][i]))) for i in range(2)])
    assert score == pytest.approx(float(np.min(r.scores)), rel=1e-5)
    plain = lrjax.sweep(nnx_loss, model, batches, optax.sgd, {"learning_rate": lrs}, num_steps=T)
    with pytest.raises(ValueError, match=r"best_state\(\) needs the run to be made with"):
        plain.best_state()


def test_nnx_dropout_state_over_chunks_rebuilds_a_model_that_trains_on():
    """``return_params`` with several chunks and Dropout (RNG keys in the state):
    the same state as one chunk, and the best copy rebuilt with ``nnx.merge``
    trains on (its RNG count an array Dropout can advance, not a NumPy scalar)."""
    model = Net(nnx.Rngs(0), dropout=0.3)
    grid = {"learning_rate": np.geomspace(1e-3, 0.3, 5)}
    kw = dict(num_steps=T, return_params=True)
    one = lrjax.sweep(nnx_loss, model, data(), optax.sgd, grid, **kw)
    chunked = lrjax.sweep(nnx_loss, model, data(), optax.sgd, grid, chunk_size=2, **kw)
    for a, b in zip(jax.tree.leaves(chunked.state), jax.tree.leaves(one.state)):
        np.testing.assert_array_equal(to_host(a), to_host(b))
    best = nnx.merge(nnx.graphdef(model), chunked.best_params(), chunked.best_state())
    count = int(best.do.rngs.count[...])
    best.train()
    best(data(steps=1)[0][0])
    assert int(best.do.rngs.count[...]) == count + 1


def test_nnx_batchnorm_running_statistics_are_carried():
    """Eval mode uses the running averages the training steps accumulated: an
    evaluation with the initial statistics (never updated) gives other numbers."""
    model = Net(nnx.Rngs(0))
    batches, val = data(), data(steps=2, seed=1)
    r = lrjax.range_test(nnx_loss, model, batches, optax.sgd, val_batches=val, **LRS)
    frozen = lrjax.range_test(
        nnx_loss, model, batches, lambda lr: optax.sgd(0.0 * lr), val_batches=val, **LRS
    )
    fresh = Net(nnx.Rngs(0))
    fresh.eval()
    initial = np.mean([float(nnx_loss(fresh, (val[0][i], val[1][i]))) for i in range(2)])
    # rate 0: parameters never move, but BatchNorm statistics do
    assert not np.allclose(frozen.val_losses, initial)
    assert not np.allclose(r.val_losses, frozen.val_losses)


def test_dropout_streams_follow_the_key():
    model = Net(nnx.Rngs(0), dropout=0.5)
    batches = data()
    run = lambda key: lrjax.range_test(nnx_loss, model, batches, optax.sgd, key=key, **LRS)
    a, b, c = run(jax.random.PRNGKey(3)), run(jax.random.PRNGKey(3)), run(jax.random.PRNGKey(4))
    np.testing.assert_array_equal(a.losses, b.losses)  # same key, same numbers
    assert not np.allclose(a.losses, c.losses)  # another key, other masks
    assert np.isfinite(a.losses[0, 0]).all()  # the smallest rate trains
    no_dropout = lrjax.range_test(nnx_loss, Net(nnx.Rngs(0)), batches, optax.sgd, **LRS)
    assert not np.allclose(a.losses, no_dropout.losses)
    # every copy draws its own masks: two copies at one rate differ
    same_rate = lrjax.range_test(
        nnx_loss, model, batches, optax.sgd, min_lr=1e-3, max_lr=1e-3 * (1 + 1e-6), num_lrs=2,
        num_steps=T,
    )  # fmt: skip
    assert not np.allclose(same_rate.losses[0, 0], same_rate.losses[0, 1])


def test_dropout_is_off_in_evaluation():
    model = Net(nnx.Rngs(0), dropout=0.5)
    batches, val = data(), data(steps=2, seed=1)
    kw = dict(val_batches=val, **LRS)
    a = lrjax.range_test(nnx_loss, model, batches, optax.sgd, key=jax.random.PRNGKey(1), **kw)
    b = lrjax.range_test(nnx_loss, model, batches, optax.sgd, key=jax.random.PRNGKey(1), **kw)
    np.testing.assert_array_equal(a.val_losses, b.val_losses)
    # eval mode evaluates the trained copy deterministically: recompute it by hand
    params = lrjax.range_test(
        nnx_loss, model, batches, optax.sgd, key=jax.random.PRNGKey(1), return_params=True, **kw
    ).params
    assert jax.tree.leaves(params)[0].shape[:2] == (1, 4)


# ------------------------------------------------------------------ Linen


def test_linen_batch_stats_equal_hand_written_loop():
    import flax.linen as nn

    class LinenNet(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            x = nn.Dense(16)(x)
            x = nn.BatchNorm(use_running_average=not train)(x)
            return nn.Dense(1)(nn.relu(x))[:, 0]

    module = LinenNet()
    variables = module.init(jax.random.PRNGKey(0), jnp.ones((2, 4)), train=False)

    def loss_fn(apply, batch):
        x, y = batch
        return jnp.mean((apply(x, train=apply.training) - y) ** 2)

    batches, val = data(), data(steps=2, seed=1)
    r = lrjax.range_test(loss_fn, (module, variables), batches, optax.sgd, val_batches=val, **LRS)

    for k, lr in enumerate(r.lrs):
        tx = optax.sgd(lr)
        params, stats = variables["params"], variables["batch_stats"]
        opt_state = tx.init(params)

        @jax.jit
        def step(params, stats, opt_state, batch, tx=tx):
            def f(p):
                out, upd = module.apply(
                    {"params": p, "batch_stats": stats},
                    batch[0],
                    train=True,
                    mutable=["batch_stats"],
                )
                return jnp.mean((out - batch[1]) ** 2), upd["batch_stats"]

            (loss, stats), g = jax.value_and_grad(f, has_aux=True)(params)
            u, opt_state = tx.update(g, opt_state, params)
            return loss, optax.apply_updates(params, u), stats, opt_state

        losses = []
        for t in range(T):
            loss, params, stats, opt_state = step(
                params, stats, opt_state, (batches[0][t], batches[1][t])
            )
            losses.append(float(loss))
        out = [
            module.apply({"params": params, "batch_stats": stats}, val[0][i], train=False)
            for i in range(2)
        ]
        val_loss = np.mean([float(jnp.mean((o - val[1][i]) ** 2)) for i, o in enumerate(out)])
        if not r.diverged[k]:
            np.testing.assert_allclose(r.losses[0, k], losses, rtol=1e-4)
            np.testing.assert_allclose(r.val_losses[0, k], val_loss, rtol=1e-4)


# --------------------------------------------------------- plain JAX state


def test_plain_state_aux_and_params_equal_hand_written_loop():
    """``state=``: a running mean of the inputs, carried per copy; aux: the
    gradient-free accuracy proxy; ``return_params``: the final weights."""
    batches = data()

    def loss_fn(w, state, batch):
        x, y = batch
        new_state = 0.9 * state + 0.1 * x.mean(0)
        pred = (x - new_state) @ w
        loss = jnp.mean((pred - y) ** 2)
        return (loss, {"mae": jnp.mean(jnp.abs(pred - y))}), new_state

    w0, s0 = jnp.zeros(4), jnp.zeros(4)
    r = lrjax.range_test(
        loss_fn, w0, batches, optax.adam, state=s0, has_aux=True, return_params=True, **LRS
    )
    assert r.aux["mae"].shape == (1, 4, T) and r.params.shape == (1, 4, 4)
    for k, lr in enumerate(r.lrs):
        tx = optax.adam(lr)
        w, s, opt = w0, s0, tx.init(w0)
        losses, maes = [], []
        for t in range(T):

            def split(w, s=s, t=t):
                (loss, aux), new_s = loss_fn(w, s, (batches[0][t], batches[1][t]))
                return loss, (aux, new_s)

            (loss, (aux, s)), g = jax.value_and_grad(split, has_aux=True)(w)
            u, opt = tx.update(g, opt, w)
            w = optax.apply_updates(w, u)
            losses.append(float(loss))
            maes.append(float(aux["mae"]))
        np.testing.assert_allclose(r.losses[0, k], losses, rtol=1e-5)
        np.testing.assert_allclose(r.aux["mae"][0, k], maes, rtol=1e-5)
        np.testing.assert_allclose(r.params[0, k], w, rtol=1e-5, atol=1e-7)


def test_plain_state_with_several_initialisations_equals_one_run_each():
    """``state=`` with ``seeds=2``: every initialisation starts from the same state;
    seed ``s`` equals a one-seed run from ``init_fn(split(PRNGKey(0), 2)[s])``."""
    batches = data()

    def loss_fn(w, state, batch):
        x, y = batch
        new_state = 0.9 * state + 0.1 * x.mean(0)
        return jnp.mean(((x - new_state) @ w - y) ** 2), new_state

    init_fn = lambda key: 0.3 * jax.random.normal(key, (4,))
    s0 = jnp.full(4, 0.5)
    kw = dict(state=s0, return_params=True, **LRS)
    both = lrjax.range_test(loss_fn, None, batches, optax.adam, seeds=2, init_fn=init_fn, **kw)
    assert both.losses.shape == (2, 4, T) and both.state.shape == (2, 4, 4)
    for s, key in enumerate(jax.random.split(jax.random.PRNGKey(0), 2)):
        one = lrjax.range_test(loss_fn, init_fn(key), batches, optax.adam, **kw)
        np.testing.assert_allclose(both.losses[s], one.losses[0], rtol=1e-5)
        np.testing.assert_allclose(both.params[s], one.params[0], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(both.state[s], one.state[0], rtol=1e-6)


# ------------------------------------------------------------ evaluation


def test_eval_every_equals_evaluations_along_a_loop():
    batches, val = data(), data(steps=3, seed=1)
    loss_fn = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
    eval_fn = lambda w, b: jnp.mean(jnp.abs(b[0] @ w - b[1]))
    r = lrjax.range_test(
        loss_fn, jnp.zeros(4), batches, optax.sgd, val_batches=val, eval_fn=eval_fn,
        eval_every=5, **LRS,
    )  # fmt: skip
    assert r.val_curves.shape == (1, 4, T // 5)
    for k, lr in enumerate(r.lrs):
        w = jnp.zeros(4)
        curve = []
        for t in range(T):
            g = jax.grad(loss_fn)(w, (batches[0][t], batches[1][t]))
            w = w - lr * g
            if (t + 1) % 5 == 0:
                curve.append(np.mean([float(eval_fn(w, (val[0][i], val[1][i]))) for i in range(3)]))
        final = np.mean([float(eval_fn(w, (val[0][i], val[1][i]))) for i in range(3)])
        if not r.diverged[k]:
            np.testing.assert_allclose(r.val_curves[0, k], curve, rtol=1e-5)
            np.testing.assert_allclose(r.val_losses[0, k], final, rtol=1e-5)


def test_sweep_with_state_and_validation():
    model = Net(nnx.Rngs(0))
    batches, val = data(), data(steps=2, seed=1)
    grid = {"learning_rate": [1e-3, 1e-2, 1e-1]}
    res = lrjax.sweep(
        nnx_loss, model, batches, lambda learning_rate: optax.sgd(learning_rate), grid,
        val_batches=val, eval_every=4,
    )  # fmt: skip
    rt = lrjax.range_test(nnx_loss, model, batches, optax.sgd, min_lr=1e-3, max_lr=1e-1,
                          num_lrs=3, num_steps=T, val_batches=val, eval_every=4)  # fmt: skip
    np.testing.assert_allclose(res.val_losses, rt.val_losses, rtol=1e-6)
    np.testing.assert_allclose(res.val_curves, rt.val_curves, rtol=1e-6)
    assert res.best == {"learning_rate": rt.best_lr} or np.isclose(
        res.best["learning_rate"], rt.best_lr
    )


# --------------------------------------------------------- streamed data


def _as_list(batches):
    return [jax.tree.map(lambda a, t=t: np.asarray(a[t]), batches) for t in range(T)]


@pytest.mark.parametrize("eval_every", [None, 5])
def test_lists_and_generators_equal_stacked_arrays(eval_every):
    model = Net(nnx.Rngs(0), dropout=0.2)
    batches, val = data(steps=40), data(steps=2, seed=1)
    kw = dict(min_lr=1e-3, max_lr=0.3, num_lrs=4, num_steps=37, val_batches=val)
    kw["eval_every"] = eval_every
    stacked = lrjax.range_test(nnx_loss, model, batches, optax.adam, **kw)
    as_list = [jax.tree.map(lambda a, t=t: np.asarray(a[t]), batches) for t in range(40)]
    listed = lrjax.range_test(nnx_loss, model, as_list, optax.adam, **kw)
    generated = lrjax.range_test(nnx_loss, model, (b for b in as_list), optax.adam, **kw)
    chunked = lrjax.range_test(nnx_loss, model, iter(as_list), optax.adam, chunk_size=3, **kw)
    for r in (listed, generated, chunked):
        np.testing.assert_array_equal(r.losses, stacked.losses)
        np.testing.assert_array_equal(r.val_losses, stacked.val_losses)
        if eval_every:
            np.testing.assert_array_equal(r.val_curves, stacked.val_curves)
    val_list = [(val[0][i], val[1][i]) for i in range(2)]
    r = lrjax.range_test(nnx_loss, model, batches, optax.adam, **{**kw, "val_batches": val_list})
    np.testing.assert_array_equal(r.val_losses, stacked.val_losses)


def test_ragged_and_short_streams_give_one_line():
    batches = _as_list(data())
    batches[7] = (batches[7][0][:10], batches[7][1][:10])
    loss_fn = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
    with pytest.raises(ValueError, match=r"step 7: leaf \[0\] has float32\[10, 4\]") as info:
        lrjax.range_test(loss_fn, jnp.zeros(4), batches, **LRS)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300
    with pytest.raises(ValueError, match="ran out after 5 batches; num_steps=12") as info:
        lrjax.range_test(loss_fn, jnp.zeros(4), iter(_as_list(data())[:5]), **LRS)
    assert "re-iterable" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="another structure"):
        lrjax.range_test(loss_fn, jnp.zeros(4), [*_as_list(data())[:3], {"x": 1}], **LRS)


# ------------------------------------------- accumulation and precision


def test_multisteps_equals_hand_written_accumulation():
    batches = data()
    loss_fn = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
    opt = lambda lr: optax.MultiSteps(optax.adam(lr), every_k_schedule=3)
    r = lrjax.range_test(loss_fn, jnp.zeros(4), batches, opt, **LRS)
    for k, lr in enumerate(r.lrs):
        tx, w, acc, m = optax.adam(lr), jnp.zeros(4), jnp.zeros(4), 0
        state, losses = tx.init(w), []
        for t in range(T):
            loss, g = jax.value_and_grad(loss_fn)(w, (batches[0][t], batches[1][t]))
            losses.append(float(loss))
            acc, m = acc + g, m + 1
            if m == 3:  # the mean gradient of 3 micro-batches, one Adam step
                u, state = tx.update(acc / 3, state, w)
                w, acc, m = optax.apply_updates(w, u), jnp.zeros(4), 0
        np.testing.assert_allclose(r.losses[0, k], losses, rtol=1e-5)


def test_bfloat16_model_trains():
    model = Net(nnx.Rngs(0), dtype=jnp.bfloat16)
    batches = data()
    r = lrjax.range_test(nnx_loss, model, batches, optax.adam, **LRS)
    f32 = lrjax.range_test(nnx_loss, Net(nnx.Rngs(0)), batches, optax.adam, **LRS)
    assert r.losses.dtype == np.float32 and np.isfinite(r.losses[0, 0]).all()
    # bfloat16 has 8 bits of mantissa: a relative error near 2**-8 per operation
    np.testing.assert_allclose(r.losses[0, 0], f32.losses[0, 0], rtol=0.05)


# ------------------------------------------------------------------ memory


def test_auto_chunk_fits_the_free_memory(monkeypatch):
    from lrjax import _engine
    from lrjax._engine import _memory  # the device's free memory, simulated here

    batches = data()
    loss_fn = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)
    kw = dict(min_lr=1e-3, max_lr=0.3, num_lrs=64, num_steps=T)
    full = lrjax.range_test(loss_fn, jnp.zeros(4), batches, **kw)
    auto = lrjax.range_test(loss_fn, jnp.zeros(4), batches, chunk_size="auto", **kw)
    np.testing.assert_array_equal(auto.losses, full.losses)
    chosen = []
    original = _memory.auto_chunk

    def record(*args):
        chosen.append(original(*args))
        return chosen[-1]

    monkeypatch.setattr(_memory, "auto_chunk", record)
    shared, per_copy = _engine.per_copy_bytes(lambda c: _memory_program(loss_fn, batches, c), 1)
    monkeypatch.setattr(
        _memory, "free_bytes", lambda device=None: (shared + 10.5 * per_copy) / _memory.FRACTION
    )
    small = lrjax.range_test(loss_fn, jnp.zeros(4), batches, chunk_size="auto", **kw)
    assert chosen == [10]
    # the same numbers as a run with 10 copies per call (another batch size may
    # round differently in the last bit: see range_test's docstring)
    ten = lrjax.range_test(loss_fn, jnp.zeros(4), batches, chunk_size=10, **kw)
    np.testing.assert_array_equal(small.losses, ten.losses)


def _memory_program(loss_fn, batches, chunk):
    r"""The compiled range-test program for ``chunk`` copies (as the engine builds it)."""
    from lrjax import _engine
    from lrjax._range_test import ConstantRate

    prepared = _engine.prepare(loss_fn, jnp.zeros(4), batches)
    hs = np.ones(chunk, np.float32)
    return _engine.compile_program(prepared, ConstantRate(optax.adam), hs, chunk, T)


def test_linen_dropout_streams_are_the_documented_keys():
    """Copy ``i`` draws from ``fold_in(key, i)``, and its step ``t`` from
    ``fold_in(copy_key, t)``: a hand-written Linen loop with those keys gives
    each copy's losses, so every copy has a stream of its own."""
    import flax.linen as nn

    class Drop(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            x = nn.Dropout(0.5, deterministic=not train)(nn.Dense(16)(x))
            return nn.Dense(1)(x)[:, 0]

    module = Drop()
    variables = module.init(jax.random.PRNGKey(0), jnp.ones((2, 4)), train=False)

    def loss_fn(apply, batch):
        return jnp.mean((apply(batch[0], train=apply.training) - batch[1]) ** 2)

    batches = data()
    key = jax.random.PRNGKey(7)
    r = lrjax.range_test(
        loss_fn, (module, variables), batches, optax.sgd, key=key, min_lr=1e-2,
        max_lr=1e-2 * (1 + 1e-6), num_lrs=3, num_steps=T,
    )  # fmt: skip
    base = jax.random.wrap_key_data(key)
    for i in range(3):
        copy_key = jax.random.fold_in(base, i)
        params, tx = variables["params"], optax.sgd(r.lrs[i])
        opt, losses = tx.init(params), []
        for t in range(T):
            batch = (batches[0][t], batches[1][t])

            def f(p, t=t, batch=batch):
                out = module.apply({"params": p}, batch[0], train=True,
                                   rngs={"dropout": jax.random.fold_in(copy_key, t)})  # fmt: skip
                return jnp.mean((out - batch[1]) ** 2)

            loss, g = jax.value_and_grad(f)(params)
            u, opt = tx.update(g, opt, params)
            params = optax.apply_updates(params, u)
            losses.append(float(loss))
        np.testing.assert_allclose(r.losses[0, i], losses, rtol=1e-5)
    assert not np.allclose(r.losses[0, 0], r.losses[0, 1])


def test_linen_dropout_keys_across_chunks():
    """Copy ``k`` folds its index among all the copies into the key, whatever the
    chunking (Flax models take one initialisation: ``s * K + k`` is ``k``), and
    its step ``t`` uses ``fold_in(copy_key, t)``: a hand-written Linen loop with
    those keys gives every copy's losses (five rates in chunks of two, the last
    one padded)."""
    import flax.linen as nn

    class Drop(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            x = nn.Dropout(0.5, deterministic=not train)(nn.Dense(8)(x))
            return nn.Dense(1)(x)[:, 0]

    module = Drop()
    variables = module.init(jax.random.PRNGKey(0), jnp.ones((2, 4)), train=False)

    def loss_fn(apply, batch):
        return jnp.mean((apply(batch[0], train=apply.training) - batch[1]) ** 2)

    steps, K = 6, 5
    batches = data(steps=steps)
    key = jax.random.PRNGKey(11)
    r = lrjax.range_test(
        loss_fn, (module, variables), batches, optax.sgd, key=key, min_lr=1e-2, max_lr=3e-2,
        num_lrs=K, num_steps=steps, chunk_size=2,
    )  # fmt: skip
    base = jax.random.wrap_key_data(key)
    for k in range(K):
        copy_key = jax.random.fold_in(base, k)
        params, tx = variables["params"], optax.sgd(r.lrs[k])
        opt, losses = tx.init(params), []
        for t in range(steps):
            x, y = batches[0][t], batches[1][t]

            def f(p, t=t, x=x, y=y):
                out = module.apply({"params": p}, x, train=True,
                                   rngs={"dropout": jax.random.fold_in(copy_key, t)})  # fmt: skip
                return jnp.mean((out - y) ** 2)

            loss, g = jax.value_and_grad(f)(params)
            u, opt = tx.update(g, opt, params)
            params = optax.apply_updates(params, u)
            losses.append(float(loss))
        # float32 both ways; XLA CPU fuses the vmapped copies differently
        np.testing.assert_allclose(r.losses[0, k], losses, rtol=1e-5, err_msg=f"copy {k}")
