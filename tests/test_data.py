"""The embedded demo data set and MLP."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from lrjax import data

ROOT = Path(__file__).resolve().parents[1]


def test_load_digits():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    X, y = data.load_digits()
    ref = sklearn_datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_allclose(X * 16, ref.data, atol=1e-5)
    np.testing.assert_array_equal(y, ref.target)
    assert X.min() >= 0.0 and X.max() <= 1.0


def test_load_digits_reads_the_file_without_importing_sklearn():
    pytest.importorskip("sklearn")
    code = (
        "import sys\n"
        "from lrjax import data\n"
        "X, y = data.load_digits()\n"
        "print(X.shape, int(y.sum()), [m for m in sys.modules if m.startswith('sklearn')])"
    )
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    from sklearn.datasets import load_digits

    assert out.stdout.split() == ["(1797,", "64)", str(int(load_digits().target.sum())), "[]"]


def test_load_digits_falls_back_to_sklearn_when_the_file_moved(monkeypatch):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    monkeypatch.setattr(data, "_digits_file", lambda: None)
    X, y = data.load_digits()
    np.testing.assert_allclose(X * 16, sklearn_datasets.load_digits().data, atol=1e-5)
    assert X.dtype == np.float32 and y.dtype == np.int32


def test_missing_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert data._digits_file() is None
    with pytest.raises(ImportError, match=r'pip install "lrjax\[demo\]"'):
        data.load_digits()


def test_init_is_deterministic_and_torch_like():
    a = data.init_mlp(jax.random.PRNGKey(0), (5, 7, 3))
    b = data.init_mlp(jax.random.PRNGKey(0), (5, 7, 3))
    c = data.init_mlp(jax.random.PRNGKey(1), (5, 7, 3))
    assert [p["w"].shape for p in a] == [(5, 7), (7, 3)]
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa["w"], pb["w"])
    assert not np.array_equal(a[0]["w"], c[0]["w"])
    assert np.abs(a[0]["w"]).max() <= 1 / np.sqrt(5) and np.abs(a[1]["b"]).max() <= 1 / np.sqrt(7)
    with pytest.raises(ValueError, match="sizes"):
        data.init_mlp(jax.random.PRNGKey(0), (5,))


def test_init_from_a_key_is_what_jax_random_draws():
    """The key path (one compiled program) draws exactly the eager jax.random numbers."""
    key = jax.random.PRNGKey(3)
    got = data.init_mlp(key, (5, 7, 3))
    for k, p, n_in, n_out in zip(jax.random.split(key, 2), got, (5, 7), (7, 3)):
        kw, kb = jax.random.split(k)
        bound = 1 / np.sqrt(n_in)
        want_w = jax.random.uniform(kw, (n_in, n_out), minval=-bound, maxval=bound)
        want_b = jax.random.uniform(kb, (n_out,), minval=-bound, maxval=bound)
        np.testing.assert_array_equal(p["w"], want_w)
        np.testing.assert_array_equal(p["b"], want_b)
    stacked = jax.vmap(lambda k: data.init_mlp(k, (5, 7, 3)))(jax.random.split(key, 2))
    assert stacked[0]["w"].shape == (2, 5, 7)


def test_init_from_an_int_seed_uses_numpy_and_compiles_nothing():
    sizes = (13, 11, 6)  # shapes no other test uses: a JAX draw would have to compile
    with _count_compiles() as compiles:
        a = data.init_mlp(0, sizes)
    assert compiles == []
    rng = np.random.default_rng(0)
    for p, n_in, n_out in zip(a, sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(n_in)
        np.testing.assert_array_equal(
            p["w"], rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32)
        )
        np.testing.assert_array_equal(
            p["b"], rng.uniform(-bound, bound, (n_out,)).astype(np.float32)
        )
        assert isinstance(p["w"], jax.Array) and p["w"].dtype == np.float32
    b = data.init_mlp(np.int64(0), sizes)
    c = data.init_mlp(1, sizes)
    np.testing.assert_array_equal(a[1]["w"], b[1]["w"])
    assert not np.array_equal(a[0]["w"], c[0]["w"])
    with pytest.raises(ValueError, match="seed >= 0"):
        data.init_mlp(-1, sizes)


@contextlib.contextmanager
def _count_compiles():
    """Names of the programs XLA compiles inside the block."""
    names: list[str] = []

    def listen(event, start, end, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            names.append(kwargs.get("fun_name", "?"))

    jax.monitoring.register_event_time_span_listener(listen)
    try:
        yield names
    finally:
        jax.monitoring.unregister_event_time_span_listener(listen)


def test_mlp_loss_matches_numpy():
    params = data.init_mlp(jax.random.PRNGKey(0), (6, 5, 4))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 6)).astype(np.float32)
    y = rng.integers(0, 4, 9).astype(np.int32)
    h = np.maximum(x @ np.asarray(params[0]["w"]) + np.asarray(params[0]["b"]), 0)
    logits = h @ np.asarray(params[1]["w"]) + np.asarray(params[1]["b"])
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    want = -logp[np.arange(9), y].mean()
    np.testing.assert_allclose(float(data.mlp_loss(params, (x, y))), want, rtol=1e-5)


def test_make_batches_epochs_without_repeats():
    X = np.arange(20, dtype=np.float32)[:, None]
    y = np.arange(20, dtype=np.int32)
    xb, yb = data.make_batches(X, y, num_steps=7, batch_size=6, seed=3)
    assert xb.shape == (7, 6, 1) and yb.shape == (7, 6)
    np.testing.assert_array_equal(xb[..., 0], yb)
    per_epoch = 20 // 6  # 3 batches per epoch
    for e in range(0, 7, per_epoch):
        epoch = yb[e : e + per_epoch].ravel()
        assert len(set(epoch.tolist())) == epoch.size  # no repeats within an epoch
    xb2, _ = data.make_batches(X, y, num_steps=7, batch_size=6, seed=3)
    np.testing.assert_array_equal(xb, xb2)
    assert data.make_batches(X, y, 2, batch_size=50)[0].shape == (2, 20, 1)


def test_load_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(30, 4))
    X[:, 2] = 1.0  # a constant feature: std 0, left at 0 after centring
    y = rng.integers(0, 3, 30)
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y)
    Xs, ys = data.load_npz(path)
    assert Xs.dtype == np.float32 and ys.dtype == np.int32
    np.testing.assert_allclose(Xs.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(Xs[:, [0, 1, 3]].std(0), 1, rtol=1e-5)
    np.testing.assert_array_equal(Xs[:, 2], 0)
    np.testing.assert_array_equal(ys, y)
    loss_fn, params, (xb, yb) = data.make_demo(num_steps=3, batch_size=8, data=(Xs, ys))
    assert params[0]["w"].shape == (4, 64) and params[-1]["w"].shape == (64, 3)
    assert np.isfinite(float(loss_fn(params, (xb[0], yb[0]))))


@pytest.mark.parametrize(
    "arrays,match",
    [
        ({"X": np.ones((3, 2))}, "no array y"),
        ({"features": np.ones((3, 2)), "labels": np.ones(3)}, "no array X or y"),
        ({"X": np.ones(3), "y": np.ones(3)}, "2-D"),
        ({"X": np.ones((3, 2)), "y": np.ones(4)}, r"shape \(3,\)"),
        ({"X": np.full((3, 2), np.nan), "y": np.ones(3)}, "finite"),
        ({"X": np.ones((3, 2)), "y": np.array([0.5, 1, 2])}, "integer class labels"),
        ({"X": np.ones((3, 2)), "y": np.array([0, -1, 2])}, "integer class labels"),
    ],
)
def test_load_npz_errors(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=match):
        data.load_npz(path)


def test_load_npz_missing_or_not_npz(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_npz(tmp_path / "nope.npz")
    text = tmp_path / "x.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="cannot read"):
        data.load_npz(text)
    single = tmp_path / "a.npy"
    np.save(single, np.ones(3))
    with pytest.raises(ValueError, match="single array"):
        data.load_npz(single)


def test_make_demo_defaults():
    pytest.importorskip("sklearn")
    loss_fn, params, (xb, yb) = data.make_demo(num_steps=4)
    assert xb.shape == (4, 128, 64) and yb.shape == (4, 128)
    assert [p["w"].shape for p in params] == [(64, 64), (64, 10)]
    assert abs(float(loss_fn(params, (xb[0], yb[0]))) - np.log(10)) < 0.2
