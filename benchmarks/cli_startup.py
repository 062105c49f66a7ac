"""``lrjax find`` from a fresh process, cold and warm, against a bare JAX start.

Three commands, each in a new Python process, interleaved (bare, cold, warm,
bare, cold, warm, ...) so load changes on a shared machine hit all alike:

- **bare**: ``python -c "import jax; jax.jit(lambda x: x + 1)(1.0)"``, the
  least any JAX program pays (interpreter, ``import jax``, one compilation).
- **cold**: ``python -m lrjax find`` with an empty compilation cache (a new
  ``XDG_CACHE_HOME`` each time), as on a user's first run.
- **warm**: the same command again, its cache filled by an earlier run.

Reports the median wall time of each, the ratios cold/bare and warm/bare, and
the medians of the phases ``lrjax find --timings`` prints (start-up: the
interpreter and the imports before the command runs; imports: matplotlib's
canvas and the optimizer; data; compile: JAX's tracing, lowering and XLA
compilation or cache reads; run; plot), and writes it all to
``benchmarks/results/cli_startup.txt``.

    python benchmarks/cli_startup.py [--repeats 7] [--out benchmarks/results/cli_startup.txt]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BARE = "import jax; jax.jit(lambda x: x + 1)(1.0)"
TIMINGS = re.compile(
    r"^lrjax find timings: (?P<phases>.*); total (?P<total>[0-9.]+) s "
    r"\((?P<n>\d+) programs compiled or loaded, (?P<hits>\d+) from the persistent cache\)$",
    re.M,
)
PHASE = re.compile(r"(\w+) ([0-9.]+) s")


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of one command in a new process, and its stderr."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=cwd)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return seconds, proc.stderr


def parse_timings(stderr: str) -> dict[str, float]:
    """The phases, total and program counts of ``lrjax find --timings``."""
    m = TIMINGS.search(stderr)
    if m is None:
        raise RuntimeError(f"no timings line in lrjax find's stderr:\n{stderr}")
    out = {name: float(v) for name, v in PHASE.findall(m.group("phases"))}
    out["programs"] = float(m.group("n"))
    out["cache hits"] = float(m.group("hits"))
    return out


def versions() -> str:
    import jax
    import matplotlib
    import numpy as np
    import optax

    import lrjax

    return (
        f"python {platform.python_version()}, jax {jax.__version__} "
        f"(backend {jax.default_backend()}), optax {optax.__version__}, "
        f"numpy {np.__version__}, matplotlib {matplotlib.__version__}, lrjax {lrjax.__version__}"
    )


def load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="runs of each command (default: 7)")
    ap.add_argument(
        "--out",
        default=str(HERE / "results" / "cli_startup.txt"),
        help="where to write the report, '-' for nowhere (stdout only; default: "
        "benchmarks/results/cli_startup.txt)",
    )
    ap.add_argument(
        "--before",
        metavar="DIR",
        help="also time lrjax find from another copy of the package (a folder holding an "
        "lrjax/ of an earlier commit, e.g. from git archive), as one more interleaved row",
    )
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")

    work = Path(tempfile.mkdtemp(prefix="lrjax_cli_startup_"))
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("LRJAX_NO_CACHE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    find = [sys.executable, "-m", "lrjax", "find", "--no-progress", "--timings",
            "--out", str(work / "lr_find.png")]  # fmt: skip
    warm_env = dict(env, XDG_CACHE_HOME=str(work / "warm-cache"))
    run(find, warm_env, work)  # fills the warm cache
    load_before = load()

    wall: dict[str, list[float]] = {"bare": [], "cold": [], "warm": []}
    phases: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    before_env = None
    if args.before:
        before_env = dict(env, PYTHONPATH=str(Path(args.before).resolve()))
        before_env["XDG_CACHE_HOME"] = str(work / "before-cache")
        wall["before"] = []
    try:
        for i in range(args.repeats):
            wall["bare"].append(run([sys.executable, "-c", BARE], env, work)[0])
            if before_env is not None:
                old = [sys.executable, "-m", "lrjax", "find", "--no-progress",
                       "--out", str(work / "before.png")]  # fmt: skip
                wall["before"].append(run(old, before_env, work)[0])
            cold_env = dict(env, XDG_CACHE_HOME=str(work / f"cold-cache-{i}"))  # empty
            for name, e in (("cold", cold_env), ("warm", warm_env)):
                seconds, stderr = run(find, e, work)
                wall[name].append(seconds)
                phases[name].append(parse_timings(stderr))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in wall.items()}
    names = ["startup", "imports", "data", "compile", "run", "plot", "programs", "cache hits"]
    lines = [
        "lrjax find from a new process: cold (empty compilation cache) and warm (cache filled)",
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores; load average {load_before} before, {load()} after",
        f"versions: {versions()}",
        f"command: python -m lrjax find --no-progress --timings (defaults: digits MLP "
        f"64-64-10, adam, 32 rates x 100 steps); bare: python -c {BARE!r}",
        f"{args.repeats} runs of each, interleaved; medians in seconds",
        *(
            [f"before: python -m lrjax find --no-progress from {args.before} (no --timings there)"]
            if args.before
            else []
        ),
        "",
        "| command | wall s | x bare | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    rows = ["bare", *(["before"] if args.before else []), "cold", "warm"]
    for name in rows:
        cells = [name, f"{med[name]:.2f}", f"{med[name] / med['bare']:.2f}"]
        for p in names:
            if name in ("bare", "before"):
                cells.append("")
            else:
                v = statistics.median(run_[p] for run_ in phases[name])
                cells.append(f"{v:.0f}" if p in ("programs", "cache hits") else f"{v:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"warm / bare = {med['warm'] / med['bare']:.2f} (goal <= 3.5); "
        f"cold / bare = {med['cold'] / med['bare']:.2f} (goal <= 7)",
        "all runs (s): "
        + "; ".join(f"{k} " + " ".join(f"{x:.2f}" for x in v) for k, v in wall.items()),
        "phases are each process' own report (start-up: interpreter and imports before the "
        "command; compile: JAX tracing + lowering + XLA compile or cache read); "
        "wall includes process exit",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out != "-":
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
