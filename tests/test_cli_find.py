"""`lrjax find`, run in-process: the table, the suggestions, the PNG, usage errors."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from lrjax.cli import main

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _rows(out: str) -> list[tuple[float, str, str]]:
    rows = []
    for line in out.splitlines():
        m = re.match(r"^\s+([0-9.e+-]+)\s+([0-9.]+|-)\s+(good|slow|unstable|diverged)\b", line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(3)))
    return rows


def test_find_on_digits_prints_table_and_writes_png(tmp_path, capsys):
    out_png = tmp_path / "lr.png"
    argv = ["find", "--steps", "10", "--num-lrs", "5", "--min-lr", "1e-4", "--max-lr", "100"]
    rc = main([*argv, "--out", str(out_png), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.err == ""
    out = captured.out
    assert "on digits (1797 samples, MLP 64-64-10)" in out
    assert "rate  final loss  status" in out
    for method in ("valley", "minimum", "steep", "slide"):
        assert re.search(rf"^\s+{method}\s", out, re.M), method
    assert out_png.read_bytes()[:8] == PNG_MAGIC
    assert f"wrote {out_png}" in out
    rows = _rows(out)
    np.testing.assert_allclose([r[0] for r in rows], np.geomspace(1e-4, 100, 5), rtol=5e-3)
    assert any(status == "diverged" for _, _, status in rows)  # 100 is far too large for Adam
    for _, loss, status in rows:
        assert (loss == "-") == (status == "diverged")


# ------------------------------------------------- the printed numbers, recomputed


def _numpy_find(X, y, lrs, steps, hidden=64, batch_size=128):
    """Each rate's score as ``lrjax find --data --optimizer sgd`` defines it, in plain NumPy.

    Written from the documentation, not from lrjax's code: features standardised
    per column; batches of ``min(128, n)`` from a fresh ``default_rng(0)``
    permutation each epoch; a ReLU MLP ``d-64-c`` with torch ``Linear``'s uniform
    init drawn by ``default_rng(0)`` (weights then bias, layer by layer, float32);
    mean softmax cross-entropy; plain SGD; the score is the mean loss of the last
    10% of steps (at least one).
    """
    X = X.astype(np.float64)
    std = X.std(0)
    X = ((X - X.mean(0)) / np.where(std > 0, std, 1.0)).astype(np.float32).astype(np.float64)
    n, d = X.shape
    c = int(y.max()) + 1
    B = min(batch_size, n)
    per_epoch = n // B
    rng = np.random.default_rng(0)
    epochs = -(-steps // per_epoch)
    order = np.concatenate([rng.permutation(n)[: per_epoch * B] for _ in range(epochs)])
    idx = order[: steps * B].reshape(steps, B)
    rng = np.random.default_rng(0)
    init = []
    for n_in, n_out in ((d, hidden), (hidden, c)):
        bound = 1 / np.sqrt(n_in)
        w = rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32)
        b = rng.uniform(-bound, bound, (n_out,)).astype(np.float32)
        init += [w.astype(np.float64), b.astype(np.float64)]
    scores = []
    for lr in lrs:
        w1, b1, w2, b2 = (a.copy() for a in init)
        losses = []
        for t in range(steps):
            xb, yb = X[idx[t]], y[idx[t]]
            pre = xb @ w1 + b1
            h = np.maximum(pre, 0)
            logits = h @ w2 + b2
            logits -= logits.max(1, keepdims=True)
            p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            losses.append(-np.log(p[np.arange(B), yb]).mean())
            g = p.copy()
            g[np.arange(B), yb] -= 1
            g /= B
            gw2, gb2 = h.T @ g, g.sum(0)
            gh = (g @ w2.T) * (pre > 0)
            gw1, gb1 = xb.T @ gh, gh.sum(0)
            w1, b1, w2, b2 = w1 - lr * gw1, b1 - lr * gb1, w2 - lr * gw2, b2 - lr * gb2
        scores.append(np.mean(losses[-max(1, steps // 10) :]))
    return np.array(scores)


def test_printed_losses_match_a_numpy_sgd_written_from_the_docs(tmp_path, capsys):
    rng = np.random.default_rng(7)
    X = rng.normal(2.0, 3.0, size=(300, 3))
    y = np.argmax(X @ rng.normal(size=(3, 3)), axis=1)
    path = tmp_path / "blobs.npz"
    np.savez(path, X=X, y=y)
    argv = ["find", "--data", str(path), "--optimizer", "sgd", "--steps", "20",
            "--num-lrs", "4", "--min-lr", "0.01", "--max-lr", "3",
            "--out", str(tmp_path / "p.png"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    lrs = np.geomspace(0.01, 3.0, 4)
    assert len(rows) == 4
    np.testing.assert_allclose([r[0] for r in rows], lrs, rtol=5e-3)  # printed to 3 digits
    assert all(status != "diverged" for _, _, status in rows), out
    want = _numpy_find(X, y, lrs, steps=20)
    got = np.array([float(loss) for _, loss, _ in rows])
    np.testing.assert_allclose(got, want, atol=2e-4)  # printed to 4 decimals, float32 math
    assert want.max() - want.min() > 0.05  # the rates give different losses: a real check
    best = int(np.argmin(want))
    marked = [i for i, line in enumerate(_table_lines(out)) if "<- lowest loss" in line]
    assert marked == [best]
    suggested = float(re.search(r"^suggested rate: ([0-9.e+-]+)", out, re.M).group(1))
    assert suggested == pytest.approx(lrs[best], rel=5e-3)


def _table_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if _rows(line)]


def test_find_sweep_mode_and_own_data(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    path = tmp_path / "mine.npz"
    np.savez(path, X=X, y=y)
    png = tmp_path / "s.png"
    rc = main(["find", "--data", str(path), "--mode", "sweep", "--steps", "30",
               "--optimizer", "momentum", "--out", str(png), "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "on mine.npz (200 samples, MLP 5-64-2)" in out
    assert "step        rate    smoothed  status" in out
    assert png.read_bytes()[:8] == PNG_MAGIC
    png2 = tmp_path / "p.png"
    rc = main(["find", "--data", str(path), "--seeds", "2", "--steps", "8", "--num-lrs", "3",
               "--out", str(png2), "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and "± std" in out and png2.exists()


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--num-lrs", "0"], "--num-lrs must be >= 1"),
        (["--steps", "-1"], "--steps must be >= 1"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--min-lr", "1", "--max-lr", "0.1"], "--min-lr must be < --max-lr"),
        (["--min-lr", "0"], "--min-lr must be a finite number > 0"),
        (["--max-lr", "inf"], "--max-lr must be a finite number > 0"),
        (["--min-lr", "abc"], "invalid float value"),
        (["--optimizer", "lion"], "--optimizer must be one of"),
        (["--mode", "grid"], "--mode must be parallel or sweep"),
        (["--mode", "sweep", "--seeds", "2"], "--seeds applies to --mode parallel only"),
        (["--data", "/nonexistent/file.npz"], "does not exist"),
        (["--out", "/nonexistent/dir/x.png"], "does not exist"),
        (["--out", "plot.xyz"], "unknown image format"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_usage_errors_are_one_line_exit_2(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(["find", *argv])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lrjax: error:"), err
    assert match in lines[0]


def test_npz_without_y_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "bad.npz"
    np.savez(path, X=np.ones((4, 2)))
    rc = main(["find", "--data", str(path), "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no array y" in err[0]


def test_missing_sklearn_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    rc = main(["find", "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert 'pip install "lrjax[demo]"' in err[0]
