"""Wall time and CPU time of every script in examples/, at full size, one subprocess each.

Each script runs as a user runs it (``python examples/NAME.py``, not the
shortened ``LRJAX_EXAMPLE_FAST=1`` mode of the tests), in a scratch directory,
with ``MPLBACKEND=Agg`` and this checkout first on ``PYTHONPATH``. Its wall time
(interpreter start-up, imports and compilation included) and its CPU time (user +
system, all threads, from ``resource.getrusage(RUSAGE_CHILDREN)``) go into a
Markdown table, ``benchmarks/results/example_times.md``, with the machine, the
versions and the load average before and after each script: on a shared machine
wall time grows with the load, CPU time much less. The docs link to that file
instead of promising a number.

Run:  python benchmarks/example_times.py [--out FILE] [--only NAME ...] [--timeout 600]
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
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "example_times.md"


def run_one(script: Path, env: dict[str, str], timeout: float) -> tuple[float, float, str]:
    """``(wall seconds, CPU seconds, status)`` of one script run in a scratch directory."""
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
                timeout=timeout,
            )
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            status = f"killed after {timeout:.0f} s"
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # A killed child is not waited for by getrusage's accounting: its CPU is lost.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, status


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="the Markdown file to write")
    ap.add_argument("--only", nargs="*", help="script names to run (default: all)")
    ap.add_argument("--timeout", type=float, default=600.0, help="give up on one example after")
    args = ap.parse_args()

    env = {k: v for k, v in os.environ.items() if k != "LRJAX_EXAMPLE_FAST"}
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    scripts = sorted((ROOT / "examples").glob("*.py"))
    if args.only:
        scripts = [s for s in scripts if s.name in args.only or s.stem in args.only]

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    start_load = load_note()
    print(f"{machine_info()}\nstart: {start_load}", flush=True)
    rows = []
    for script in scripts:
        wall, cpu, status = run_one(script, env, args.timeout)
        rows.append([script.name, f"{wall:.1f}", f"{cpu:.1f}", status, load_note()])
        print(f"  {script.name}: {wall:.1f} s, CPU {cpu:.1f} s ({status}; {load_note()})")
    header = ["example", "wall s", "CPU s", "status", "load after it"]
    out = table(rows, header)
    lines = [
        "# Example run times",
        "",
        f"Written by `python benchmarks/example_times.py` on {started}: every script in",
        "`examples/` at full size (`LRJAX_EXAMPLE_FAST` unset), one subprocess each.",
        "Wall seconds include interpreter start-up, imports and compilation; CPU seconds",
        "are the user + system time of the script's process (all its threads). On a",
        "shared machine wall time grows with the load average, CPU time much less.",
        "",
        f"Machine: {machine_info()}",
        "",
        f"Load at the start: {start_load}.",
        "",
        out,
        "",
        f"Load at the end: {load_note()}.",
        "",
    ]
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
