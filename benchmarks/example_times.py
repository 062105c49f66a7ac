"""Wall time of every script in examples/, at full size, one subprocess each.

The examples promise to finish in under a minute on two CPU cores
(docs/examples.md). This measures that claim instead of asserting it in a test: each
script runs as a user runs it (``python examples/NAME.py``, not the shortened
``LRJAX_EXAMPLE_FAST=1`` mode of the tests), in a scratch directory, and its wall
time, including interpreter start-up, imports and compilation, and its CPU time
(user + system, all threads) are printed with the machine, the versions and the
load average, and written to
``benchmarks/results/example_times_MACHINE.txt``.

Run:  python benchmarks/example_times.py [--machine cpu2] [--out DIR] [--limit 60]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_note, machine_info, table

ROOT = Path(__file__).resolve().parent.parent


def default_machine() -> str:
    import jax

    return "gpu" if jax.default_backend() == "gpu" else f"cpu{os.cpu_count()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machine", default=os.environ.get("LRJAX_BENCH_MACHINE") or None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--limit", type=float, default=60.0, help="the claim, seconds per example")
    ap.add_argument("--timeout", type=float, default=600.0, help="give up on one example after")
    args = ap.parse_args()
    machine = args.machine or default_machine()

    lines = [
        f"# benchmarks/example_times.py ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        machine_info(),
        f"start: {load_note()}",
        "each example at full size (LRJAX_EXAMPLE_FAST unset), wall seconds incl. start-up;",
        "CPU s: user + system time of the example's process (all its threads): on a busy",
        "machine wall time grows with the load, CPU time much less",
        "",
    ]
    print("\n".join(lines), flush=True)
    rows = []
    env = {k: v for k, v in os.environ.items() if k != "LRJAX_EXAMPLE_FAST"}
    env["MPLBACKEND"] = "Agg"
    for script in sorted((ROOT / "examples").glob("*.py")):
        with tempfile.TemporaryDirectory() as tmp:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            try:
                proc = subprocess.run(
                    [sys.executable, str(script)],
                    cwd=tmp,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                )
                status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
            except subprocess.TimeoutExpired:
                status = f"killed after {args.timeout:.0f} s"
            seconds = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        under = "yes" if status == "ok" and seconds < args.limit else "no"
        rows.append([script.name, f"{seconds:.1f}", f"{cpu:.1f}", status, under, load_note()])
        print(f"  {script.name}: {seconds:.1f} s, CPU {cpu:.1f} s ({status}; {load_note()})")
    header = ["example", "wall s", "CPU s", "status", f"under {args.limit:.0f} s", "after it"]
    out = table(rows, header)
    lines += [out, f"end: {load_note()}"]
    print(out)
    path = Path(args.out) / f"example_times_{machine}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
