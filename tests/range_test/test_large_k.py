"""K = 1024 rates on the digits MLP: runs in chunks in bounded memory (issue: 24 GiB machines)."""

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, resource
    import numpy as np
    import lrjax
    from lrjax import data

    loss_fn, params, batches = data.make_demo(num_steps=100)
    r = lrjax.range_test(loss_fn, params, batches, min_lr=1e-5, max_lr=10.0,
                         num_lrs=1024, num_steps=100, chunk_size=128, progress=False)
    print(json.dumps({
        "shape": list(r.losses.shape),
        "diverged": int(r.diverged.sum()),
        "finite_scores": int(np.isfinite(r.scores).sum()),
        "best_lr": r.best_lr,
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_1024_rates_in_chunks_fit_in_little_memory() -> None:
    # A fresh interpreter, so the peak resident memory is this run's alone.
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shape"] == [1, 1024, 100]
    # Rates up to 10 with Adam: the top ones diverge, the low ones train.
    assert 0 < out["diverged"] < 1024
    assert out["finite_scores"] == 1024 - out["diverged"]
    assert 1e-4 < out["best_lr"] < 1.0
    # ~0.5 GiB measured (jax, the compiled chunk, 1024 x 100 losses); far below 24 GiB.
    assert out["maxrss_mib"] < 2048, out
