"""Multi-process range test and sweep: ``examples/multihost_cpu.py`` for real.

Two processes, two CPU devices each, joined by ``jax.distributed`` on
127.0.0.1 with gloo CPU collectives, run the same ``lrjax.range_test`` and
``lrjax.sweep`` over one mesh of all four devices, on a plain model and on a
model with state scored on validation data. Each must get the full
result, equal to one process on four devices.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "multihost_cpu.py"
spec = importlib.util.spec_from_file_location("multihost_cpu", SCRIPT)
multihost = importlib.util.module_from_spec(spec)
spec.loader.exec_module(multihost)

pytestmark = pytest.mark.slow


def _one_process(devices: int) -> dict:
    # The script sets the device count; any other XLA flag (e.g. the vector ISA,
    # --xla_cpu_max_isa) stays, as the two-process launch inherits it: both sides
    # must compile for the same instructions to round alike.
    env = dict(os.environ)
    flags = [f for f in env.pop("XLA_FLAGS", "").split() if "device_count" not in f]
    if flags:
        env["XLA_FLAGS"] = " ".join(flags)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--num-processes=1", f"--devices-per-process={devices}"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return multihost.parse_result(proc.stdout)


def _assert_same_numbers(got: dict, want: dict) -> None:
    assert got["lrs"] == pytest.approx(want["lrs"], rel=1e-12)
    np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-6)
    np.testing.assert_allclose(got["sweep_scores"], want["sweep_scores"], rtol=1e-6)
    assert got["best_lr"] == pytest.approx(want["best_lr"], rel=1e-6)
    assert got["sweep_best"] == pytest.approx(want["sweep_best"], rel=1e-6)
    # the stateful model with validation data (NaN written as None / -1)
    for a, b in zip(got["val_losses"], want["val_losses"]):
        assert (a is None and b is None) or a == pytest.approx(b, rel=1e-5)
    np.testing.assert_allclose(got["val_curves"], want["val_curves"], rtol=1e-5)
    np.testing.assert_allclose(
        got["stateful_sweep_scores"], want["stateful_sweep_scores"], rtol=1e-5
    )
    assert got["stateful_best_lr"] == pytest.approx(want["stateful_best_lr"], rel=1e-6)


def test_two_processes_get_the_full_result_of_one_process_on_four_devices():
    outputs = multihost.launch(num_processes=2, devices_per_process=2, timeout=300)
    results = [multihost.parse_result(out) for out in outputs]
    for r in results:
        assert r["processes"] == 2 and r["devices"] == 4, r
        assert len(r["scores"]) == 8 and len(r["sweep_scores"]) == 8
    assert results[0] == results[1]  # every process gets the whole result
    single = _one_process(devices=4)
    assert single["processes"] == 1 and single["devices"] == 4
    for r in results:
        _assert_same_numbers(r, single)
    # The run is not degenerate: some rates trained, some diverged.
    scores = np.asarray(results[0]["scores"])
    assert np.isfinite(scores).sum() >= 4 and np.isinf(scores).any()
    val = results[0]["val_losses"]
    assert sum(v is not None for v in val) >= 4 and None in val


def test_launcher_reports_a_failed_process():
    with pytest.raises(RuntimeError, match="process 0 exited"):
        multihost.launch(num_processes=1, devices_per_process=0, timeout=120)


def test_parse_result_names_the_missing_line():
    with pytest.raises(ValueError, match="no RESULT line"):
        multihost.parse_result("process 0 of 2\n")
