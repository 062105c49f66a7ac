"""First-call cost of the range-test engine, this checkout against an older one.

Each measurement is a new Python process (a cold in-memory JAX cache, no
persistent cache) that imports lrjax from the given source tree and runs
``lrjax.range_test`` on the digits MLP (32 rates x 100 steps, Adam) twice:
the first call pays tracing, lowering and XLA compilation, the second only the
run. "compile" is the first minus the second; JAX's own compile events (trace,
lower, backend compile) are summed too. The two trees alternate, ``--repeats``
times each, and the medians are compared in one table (this machine is noisy:
ratios measured side by side are what to read).

    python benchmarks/engine_compile.py --before /path/to/old/checkout [--repeats 5]

(``git worktree add /tmp/before <commit>`` makes such a checkout.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _common import machine_info, table

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, time
import jax
from jax import monitoring
compile_s = []
def listen(event, duration, **kw):
    if event in ("/jax/core/compile/jaxpr_trace_duration",
                 "/jax/core/compile/jaxpr_to_mlir_module_duration",
                 "/jax/core/compile/backend_compile_duration"):
        compile_s.append(duration)
monitoring.register_event_duration_secs_listener(listen)
import numpy as np, optax, lrjax
from lrjax import data
X, y = data.load_digits()
sizes = data.mlp_sizes(X, y)
params = data.init_mlp(jax.random.PRNGKey(0), sizes)
batches = data.make_batches(X, y, 100, batch_size=128, seed=0)
kw = dict(min_lr=1e-5, max_lr=10.0, num_lrs=32, num_steps=100, progress=False)
times = []
for _ in range(2):
    t0 = time.perf_counter()
    r = lrjax.range_test(data.mlp_loss, params, batches, optax.adam, **kw)
    times.append(time.perf_counter() - t0)
print("RESULT " + json.dumps({"first": times[0], "second": times[1],
                              "events": sum(compile_s), "best_lr": r.best_lr}))
"""


def probe(tree: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",)}
    env["PYTHONPATH"] = str(tree)
    env["LRJAX_NO_CACHE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=900
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="an older source tree")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    trees = {"before": args.before.resolve(), "now": ROOT}
    runs: dict[str, list[dict]] = {k: [] for k in trees}
    for _ in range(args.repeats):
        for name, tree in trees.items():
            runs[name].append(probe(tree))
    rows = []
    med = {}
    for name, rs in runs.items():
        first = statistics.median(r["first"] for r in rs)
        second = statistics.median(r["second"] for r in rs)
        events = statistics.median(r["events"] for r in rs)
        med[name] = first - second
        rows.append(
            [name, f"{first:.2f}", f"{second:.2f}", f"{first - second:.2f}", f"{events:.2f}"]
        )
    print(machine_info())
    print(f"os.getloadavg() at the end: {os.getloadavg()[0]:.1f}")
    print(f"digits MLP, 32 rates x 100 steps, Adam; {args.repeats} processes per tree, medians")
    print(
        table(
            rows, ["engine", "first call s", "second call s", "compile s", "JAX compile events s"]
        )
    )
    print(f"compile now / before: {med['now'] / med['before']:.2f}")
    print(f"best_lr before {runs['before'][0]['best_lr']:.4g}, now {runs['now'][0]['best_lr']:.4g}")


if __name__ == "__main__":
    main()
