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
    """``(rate, train, status)`` per table row (the val column, if any, skipped)."""
    return [(r[0], r[1], r[3]) for r in _rows_val(out)]


def _rows_val(out: str) -> list[tuple[float, str, str | None, str]]:
    """``(rate, train, val or None, status)`` per table row."""
    rows = []
    num = r"([0-9.]+|-)"
    pattern = rf"^\s+([0-9.e+-]+)\s+{num}(?:\s+{num})?\s+(good|slow|unstable|diverged)\b"
    for line in out.splitlines():
        m = re.match(pattern, line)
        if m:
            rows.append((float(m.group(1)), m.group(2), m.group(3), m.group(4)))
    return rows


def test_find_on_digits_prints_table_and_writes_png(tmp_path, capsys):
    out_png = tmp_path / "lr.png"
    argv = ["find", "--steps", "10", "--num-lrs", "5", "--min-lr", "1e-4", "--max-lr", "100"]
    rc = main([*argv, "--out", str(out_png), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.err == ""
    out = captured.out
    assert "on digits (1797 samples, 359 held out, MLP 64-64-10)" in out
    assert "train: mean training loss, last 1 steps; val: validation loss after step 10" in out
    assert re.search(r"rate\s+train\s+val\s+status", out)
    for method in ("valley", "minimum", "steep", "slide"):  # on request only
        assert not re.search(rf"^\s+{method}\s", out, re.M), method
    assert re.search(r"^suggested rate: [0-9.e+-]+: the rate with the lowest validation", out, re.M)
    assert out_png.read_bytes()[:8] == PNG_MAGIC
    assert f"wrote {out_png}" in out
    rows = _rows(out)
    np.testing.assert_allclose([r[0] for r in rows], np.geomspace(1e-4, 100, 5), rtol=5e-3)
    assert any(status == "diverged" for _, _, status in rows)  # 100 is far too large for Adam
    for _, loss, status in rows:
        assert (loss == "-") == (status == "diverged")
    rc = main([*argv, "--out", str(out_png), "--no-progress", "--fastai-rules"])
    out = capsys.readouterr().out
    for method in ("valley", "minimum", "steep", "slide"):
        assert re.search(rf"^\s+{method}\s", out, re.M), method


# ------------------------------------------------- the printed numbers, recomputed


def _numpy_find(X, y, lrs, steps, hidden=64, batch_size=128, val_fraction=0.0):
    """Each rate's score as ``lrjax find --data --optimizer sgd`` defines it, in plain NumPy.

    Written from the documentation, not from lrjax's code: features standardised
    per column; batches of ``min(128, n)`` from a fresh ``default_rng(0)``
    permutation each epoch; a ReLU MLP ``d-64-c`` with torch ``Linear``'s uniform
    init drawn by ``default_rng(0)`` (weights then bias, layer by layer, float32);
    mean softmax cross-entropy; plain SGD; the score is the mean loss of the last
    10% of steps (at least one). With ``val_fraction``, a ``default_rng(0)``
    permutation's first ``round(val_fraction * n)`` rows are held out and each
    rate's validation loss is their mean loss after training (in equal
    batches of at most 128, the tail that does not fit left out).

    Returns:
      ``(scores, val_losses)`` (``val_losses`` is ``None`` without a split).
    """
    X = X.astype(np.float64)
    std = X.std(0)
    X = ((X - X.mean(0)) / np.where(std > 0, std, 1.0)).astype(np.float32).astype(np.float64)
    Xv = yv = None
    if val_fraction:
        order = np.random.default_rng(0).permutation(len(X))
        n_val = round(val_fraction * len(X))
        Xv, yv, X, y = X[order[:n_val]], y[order[:n_val]], X[order[n_val:]], y[order[n_val:]]
        n_batches = -(-n_val // 128)
        keep = n_val // n_batches * n_batches
        Xv, yv = Xv[:keep], yv[:keep]
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

    def loss_of(w1, b1, w2, b2, xb, yb):
        logits = np.maximum(xb @ w1 + b1, 0) @ w2 + b2
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        return -np.log(p[np.arange(len(yb)), yb]).mean()

    scores, val_losses = [], []
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
        if Xv is not None:
            val_losses.append(loss_of(w1, b1, w2, b2, Xv, yv))
    return np.array(scores), (np.array(val_losses) if Xv is not None else None)


def test_printed_losses_match_a_numpy_sgd_written_from_the_docs(tmp_path, capsys):
    rng = np.random.default_rng(7)
    X = rng.normal(2.0, 3.0, size=(300, 3))
    y = np.argmax(X @ rng.normal(size=(3, 3)), axis=1)
    path = tmp_path / "blobs.npz"
    np.savez(path, X=X, y=y)
    argv = ["find", "--data", str(path), "--optimizer", "sgd", "--steps", "20",
            "--num-lrs", "4", "--min-lr", "0.01", "--max-lr", "3",
            "--out", str(tmp_path / "p.png"), "--no-progress", "--val-fraction", "0"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    lrs = np.geomspace(0.01, 3.0, 4)
    assert len(rows) == 4
    np.testing.assert_allclose([r[0] for r in rows], lrs, rtol=5e-3)  # printed to 3 digits
    assert all(status != "diverged" for _, _, status in rows), out
    want, _ = _numpy_find(X, y, lrs, steps=20)
    got = np.array([float(loss) for _, loss, _ in rows])
    np.testing.assert_allclose(got, want, atol=2e-4)  # printed to 4 decimals, float32 math
    assert want.max() - want.min() > 0.05  # the rates give different losses: a real check
    best = int(np.argmin(want))
    marked = [i for i, line in enumerate(_table_lines(out)) if "<- best training score" in line]
    assert marked == [best]
    # near_best: the smallest rate of the run around the best within 10% of the range
    near = best
    while near > 0 and want[near - 1] - want[best] <= 0.1 * (want.max() - want[best]):
        near -= 1
    suggested = float(re.search(r"^suggested rate: ([0-9.e+-]+)", out, re.M).group(1))
    assert suggested == pytest.approx(lrs[near], rel=5e-3)

    # the default holds out 20% and prints each rate's validation loss
    argv = [a for a in argv if a not in ("--val-fraction", "0")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = _rows_val(out)
    want, want_val = _numpy_find(X, y, lrs, steps=20, val_fraction=0.2)
    np.testing.assert_allclose([float(r[1]) for r in rows], want, atol=2e-4)
    np.testing.assert_allclose([float(r[2]) for r in rows], want_val, atol=2e-4)
    best = int(np.argmin(want_val))
    suggested = float(re.search(r"^suggested rate: ([0-9.e+-]+)", out, re.M).group(1))
    assert suggested == pytest.approx(lrs[best] / 3, rel=5e-3)  # for a run 3x the test


def _table_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if _rows(line)]


def test_find_ramp_mode_and_own_data(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    path = tmp_path / "mine.npz"
    np.savez(path, X=X, y=y)
    png = tmp_path / "s.png"
    rc = main(["find", "--data", str(path), "--mode", "ramp", "--steps", "30",
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


def test_find_old_mode_sweep_warns_once_and_runs_the_ramp(tmp_path, capsys):
    """``--mode sweep`` (the old name of the ramp) prints one deprecation line on
    stderr and then prints and draws what ``--mode ramp`` does."""
    outputs = {}
    for mode in ("ramp", "sweep"):
        png = tmp_path / f"{mode}.png"
        rc = main(["find", "--mode", mode, "--steps", "20", "--out", str(png), "--no-progress"])
        captured = capsys.readouterr()
        assert rc == 0 and png.read_bytes()[:8] == PNG_MAGIC
        # the header ends with the run's wall time and the last line names the file
        out = captured.out.splitlines()
        outputs[mode] = (re.sub(r"; [0-9.]+ s$", "", out[0]), out[1:-1], captured.err)
    assert "one ramp, 20 steps" in outputs["ramp"][0]
    assert outputs["sweep"][:2] == outputs["ramp"][:2]
    deprecation = "--mode sweep is deprecated: use --mode ramp"
    assert deprecation not in outputs["ramp"][2]
    assert outputs["sweep"][2].splitlines().count(deprecation) == 1


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
        (["--mode", "grid"], "--mode must be parallel or ramp, got 'grid'"),
        (["--mode", "ramp", "--seeds", "2"], "--seeds applies to --mode parallel only"),
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
