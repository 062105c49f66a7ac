"""`lrjax find`, run in-process: the table, the suggestions, the PNG, usage errors."""

from __future__ import annotations

import re
import sys

import jax
import numpy as np
import optax
import pytest

import lrjax
from lrjax import data
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
    assert "rate  final loss  status" in out
    for method in ("valley", "minimum", "steep", "slide"):
        assert re.search(rf"^\s+{method}\s", out, re.M), method
    assert out_png.read_bytes()[:8] == PNG_MAGIC
    assert f"wrote {out_png}" in out
    # the table holds the numbers of the same range test run through the API
    X, y = data.load_digits()
    params = data.init_mlp(jax.random.PRNGKey(0), data.mlp_sizes(X, y))
    batches = data.make_batches(X, y, 10, batch_size=128, seed=0)
    r = lrjax.range_test(data.mlp_loss, params, batches, optax.adam, 1e-4, 100.0, 5, 10)
    rows = _rows(out)
    assert len(rows) == 5
    for (lr, loss, status), k in zip(rows, range(5)):
        assert lr == pytest.approx(r.lrs[k], rel=1e-2)
        assert status == r.status[k]
        if r.diverged[k]:
            assert loss == "-"
        else:
            assert float(loss) == pytest.approx(r.scores[k], abs=1e-4)
    assert r.diverged.any()  # the run above reaches the diverged region
    valley = re.search(r"^\s+valley\s+([0-9.e+-]+)", out, re.M).group(1)
    assert float(valley) == pytest.approx(r.suggest("valley"), rel=1e-2)


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
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    rc = main(["find", "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert 'pip install "lrjax[demo]"' in err[0]
