"""``lrjax transfer``, run in-process: each width's best rate, the law, the PNG, errors.

The numbers it prints are ``lrjax.transfer``'s on the demo MLP: the command
builds the same model, data split and batches, and this checks it against a
direct call.
"""

from __future__ import annotations

import re
import warnings

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
ARGV = ["transfer", "--widths", "8,16,32", "--target", "256", "--steps", "30", "--num-lrs",
        "6", "--min-lr", "1e-4", "--max-lr", "1", "--no-progress"]  # fmt: skip


def test_transfer_prints_each_width_the_rule_and_the_rate_and_writes_png(tmp_path, capsys):
    out_png = tmp_path / "t.png"
    rc = main([*ARGV, "--out", str(out_png)])
    captured = capsys.readouterr()
    assert rc == 0 and captured.err == "", captured.err
    out = captured.out
    assert out.startswith("lrjax transfer: adam, the digits MLP at widths 8, 16, 32, 6 rates")
    rows = re.findall(r"^\s+(\d+)\s+([0-9.e+-]+)\s+([0-9.e+-]+) \.\. ([0-9.e+-]+)", out, re.M)
    assert [int(r[0]) for r in rows] == [8, 16, 32]
    rate = re.search(r"^rate at width 256: ([0-9.e+-]+) \(80% interval", out, re.M)
    assert rate and re.search(r"^rule: (fit|theory|shrunk|reuse) \(", out, re.M)
    assert out_png.read_bytes()[:8] == PNG_MAGIC and f"wrote {out_png}" in out

    # the same numbers as lrjax.transfer on the same model, split and batches
    X, y = data.load_digits()
    order = np.random.default_rng(0).permutation(len(X))
    n_val = round(0.2 * len(X))
    Xt, yt, Xv, yv = X[order[n_val:]], y[order[n_val:]], X[order[:n_val]], y[order[:n_val]]
    n = -(-len(Xv) // 128)
    size = len(Xv) // n
    val = (Xv[: n * size].reshape(n, size, -1), yv[: n * size].reshape(n, size))
    batches = data.make_batches(Xt, yt, 30, batch_size=128, seed=0)
    mlp = lambda width, key: data.init_mlp(key, data.mlp_sizes(Xt, yt, hidden=(width,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        direct = lrjax.transfer(data.mlp_loss, mlp, batches, optax.adam, sizes=[8, 16, 32],
                                target=256, num_steps=30, num_lrs=6, min_lr=1e-4, max_lr=1.0,
                                val_batches=val, progress=False)  # fmt: skip
    np.testing.assert_allclose([float(r[1]) for r in rows], direct.optima, rtol=2e-3)
    assert float(rate.group(1)) == pytest.approx(direct.rate, rel=2e-3)
    assert jax.tree.leaves(direct.sweeps)  # the direct call trained


@pytest.mark.parametrize(
    ("argv", "flag"),
    [(["--widths", "8,16"], "--widths"), (["--widths", "8,8,16"], "--widths"),
     (["--widths", "a,b,c"], "--widths"), (["--target", "0"], "--target"),
     (["--num-lrs", "2"], "--num-lrs"), (["--min-lr", "1", "--max-lr", "0.1"], "--min-lr"),
     (["--val-fraction", "1"], "--val-fraction"), (["--optimizer", "lion"], "--optimizer")],
)  # fmt: skip
def test_bad_flags_end_with_one_line_and_exit_2(argv, flag, capsys, tmp_path):
    rc = main([*ARGV, "--out", str(tmp_path / "t.png"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("lrjax: error: ") and flag in err[0]
