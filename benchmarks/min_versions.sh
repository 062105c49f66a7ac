#!/usr/bin/env bash
# Runs the test suite at the lowest versions pyproject.toml declares:
#
#   bash benchmarks/min_versions.sh [PYTEST ARGS...]
#
# Reads every requirement of [project].dependencies and of the `demo` and `test`
# extras from pyproject.toml (tomllib, so the pins never drift from the declared
# floors), pins each one at its lower bound (`jax>=0.10` -> `jax==0.10`, jaxlib
# pinned with jax; `==` pins stay as they are), creates a fresh virtual
# environment, installs lrjax with `.[test]` under those pins, and runs the
# README's test command (python -m pytest -q -n 2) from the repository root. PYTEST
# ARGS are appended (a selection such as `tests/test_frameworks.py` for a quick
# check). Packages pyproject.toml does not name (scipy, chex, orbax-export, ...)
# resolve to the newest release their dependents allow, as for a user.
#
# Writes the installed versions next to the declared floors, `pip check`, and
# pytest's summary (failures, errors and skips included) to
# benchmarks/results/min_versions.txt, and pytest's whole output beside it
# (min_versions.log, not committed). The exit status is non-zero if the install,
# `pip check`, a pin or a test fails. Environment:
#   LRJAX_MIN_OUT     the summary file (default benchmarks/results/min_versions.txt)
#   LRJAX_MIN_VENV    the virtual environment, removed and created anew on every run
#                     (default /tmp/lrjax-min-venv; about 2 GB with torch)
#   LRJAX_MIN_PYTHON  the interpreter it is made from (default python3; 3.11 or newer,
#                     for tomllib)
#   LRJAX_MIN_PYTEST  the base pytest arguments (default "-q -n 2")
# Needs the package index (pip's cache makes a rerun quick). The whole suite takes
# 10-30 minutes on 2 cores, depending on the load.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${LRJAX_MIN_OUT:-benchmarks/results/min_versions.txt}
venv=${LRJAX_MIN_VENV:-/tmp/lrjax-min-venv}
base_python=${LRJAX_MIN_PYTHON:-python3}
read -r -a base <<< "${LRJAX_MIN_PYTEST:--q -n 2}"
command="python -m pytest ${base[*]}${*:+ $*}"
log="${out%.txt}.log"
mkdir -p "$(dirname "$out")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The floors, one `name==version` a line (the pip constraints), or exit 2 naming a
# requirement without a lower bound.
"$base_python" - "$root/pyproject.toml" > "$work/constraints.txt" <<'EOF' || exit 2
import re
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
extras = project.get("optional-dependencies", {})
name = project["name"]

requirements, seen, todo = [], set(), ["test"]
requirements += project["dependencies"]
while todo:  # the test extra and every extra of lrjax it names ("lrjax[demo]")
    extra = todo.pop()
    if extra in seen:
        continue
    seen.add(extra)
    for req in extras[extra]:
        own = re.fullmatch(rf"{name}\[([\w,\s-]+)\]", req.strip())
        if own:
            todo += [e.strip() for e in own.group(1).split(",")]
        else:
            requirements.append(req)

pins = {}
for req in requirements:
    spec = req.split(";")[0].strip()
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)", spec)
    package, clauses = match.group(1).lower(), match.group(3)
    lows = [
        v.strip()
        for op, v in re.findall(r"(>=|==|~=)\s*([^,\s]+)", clauses)
        if op in (">=", "==", "~=")
    ]
    if len(lows) != 1:
        sys.exit(f"min_versions.sh: {req!r} in pyproject.toml has no single lower bound")
    pins[package] = lows[0]
if "jax" in pins:  # jax and jaxlib are released together, with equal versions
    pins.setdefault("jaxlib", pins["jax"])
for package, version in sorted(pins.items()):
    print(f"{package}=={version}")
EOF

echo "== fresh venv $venv ($("$base_python" --version 2>&1))"
rm -rf "$venv"
"$base_python" -m venv "$venv" || exit 2
unset PYTHONPATH PYTHONHOME
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"  # the tests find ruff on PATH
py="$venv/bin/python"
echo "== pip install -e .[test] under $(wc -l < "$work/constraints.txt") pins"
"$py" -m pip install -q --disable-pip-version-check -c "$work/constraints.txt" -e ".[test]" \
  > "$work/install.txt" 2>&1
install_rc=$?
grep -v "is ignored: it is neither" "$work/install.txt" | tail -20

# Each pin against what is installed (pip's constraints should make them equal).
"$py" - "$work/constraints.txt" > "$work/versions.txt" <<'EOF'
import re
import sys
from importlib import metadata


def release(version):  # "2.0" -> (2,), "2.0.0" -> (2,), "2.13.0+cpu" -> (2, 13)
    parts = [int(p) for p in re.match(r"\d+(?:\.\d+)*", version).group().split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


bad, pinned = 0, set()
print(f"{'package':<26} {'floor':>10} {'installed':>12}")
for line in open(sys.argv[1]):
    package, floor = line.strip().split("==")
    pinned.add(package)
    try:
        installed = metadata.version(package)
    except metadata.PackageNotFoundError:
        installed = "missing"
    ok = installed != "missing" and release(installed) == release(floor)
    bad += not ok
    print(f"{package:<26} {floor:>10} {installed:>12}{'' if ok else '  <- not the floor'}")
others = ["scipy", "ml_dtypes", "chex", "orbax-checkpoint", "orbax-export", "jaxtyping",
          "mkdocstrings-python", "treescope"]
found = []
for package in (p for p in others if p not in pinned):
    try:
        found.append(f"{package} {metadata.version(package)}")
    except metadata.PackageNotFoundError:
        pass
print("resolved, not pinned: " + ", ".join(found))
sys.exit(1 if bad else 0)
EOF
versions_rc=$?
"$py" -m pip check > "$work/check.txt" 2>&1
check_rc=$?
where=$(cd /tmp && "$py" -c "import lrjax, os; print(os.path.dirname(lrjax.__file__))" 2>&1)
versions=$("$py" -c "import sys, jax, jaxlib, optax, numpy; print(f'python {sys.version.split()[0]}, \
jax {jax.__version__}, jaxlib {jaxlib.__version__}, optax {optax.__version__}, \
numpy {numpy.__version__}')" 2>&1 | tail -1)

echo "== $command  -> $log"
start=$(date +%s)
if [ "$install_rc" -eq 0 ]; then
  "$py" -m pytest "${base[@]}" "$@" > "$log" 2>&1
  pytest_rc=$?
else
  echo "not run: the install failed" > "$log"
  pytest_rc=1
fi
seconds=$(($(date +%s) - start))

model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
{
  echo "# benchmarks/min_versions.sh${*:+ $*}  ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo "# host: $(uname -srm), $model, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# $versions, a fresh venv; lrjax imported from ${where/#$root/<repo>}"
  echo "# command: $command"
  echo
  echo "## the floors pyproject.toml declares, and what is installed"
  cat "$work/versions.txt"
  echo
  echo "## pip check"
  cat "$work/check.txt"
  [ "$install_rc" -ne 0 ] && echo "pip install failed (status $install_rc)" &&
    grep -v "is ignored: it is neither" "$work/install.txt" | tail -20
  echo
  echo "## pytest (${seconds} s, status $pytest_rc)"
  # The short summary pytest prints under -ra: failures, errors, skips, xfails.
  sed -n '/short test summary info/,$p' "$log" | grep -E '^(FAILED|ERROR|SKIPPED|XFAIL|XPASS) '
  grep -E '[0-9]+ (passed|failed|errors?|skipped|deselected)' "$log" | tail -1
} > "$out"
cat "$out"
for rc in "$install_rc" "$versions_rc" "$check_rc" "$pytest_rc"; do
  [ "$rc" -ne 0 ] && exit 1
done
exit 0
