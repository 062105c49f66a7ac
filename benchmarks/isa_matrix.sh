#!/usr/bin/env bash
# Runs the test suite once per vector instruction set this CPU offers:
#
#   bash benchmarks/isa_matrix.sh [PYTEST ARGS...]
#
# XLA's CPU code depends on the instructions it may use, so float results differ
# in their last bits between CPUs (and chaotic ones, such as a diverging copy,
# differ completely); the suite must pass on any of them. The flags of
# /proc/cpuinfo say which of SSE4_2, AVX, AVX2 and AVX512 (avx512f) this CPU has;
# for each, the README's test command (python -m pytest -q -n 2) runs with
# XLA_FLAGS=--xla_cpu_max_isa=ISA, which makes XLA generate code for at most that
# instruction set. PYTEST ARGS are appended to every run (a selection such as
# `-k ramp tests/range_test` for a quick check).
#
# Writes a summary (ISA, passed, failed, errors, skipped, seconds, the failed
# tests) to benchmarks/results/isa_matrix.txt, and each run's output beside it
# (isa_matrix_ISA.log). Environment:
#   LRJAX_ISA_OUT     the summary file (default benchmarks/results/isa_matrix.txt)
#   LRJAX_ISAS        the instruction sets to run, e.g. "SSE4_2 AVX" (default:
#                     every one the CPU offers)
#   LRJAX_ISA_PYTEST  the base pytest arguments (default "-q -n 2")
# The whole suite takes about 30 minutes per instruction set on 2 cores.
# The exit status is 1 if any run failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${LRJAX_ISA_OUT:-benchmarks/results/isa_matrix.txt}
read -r -a base <<< "${LRJAX_ISA_PYTEST:--q -n 2}"

flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
offered=()
for pair in sse4_2:SSE4_2 avx:AVX avx2:AVX2 avx512f:AVX512; do
  [[ "$flags" == *" ${pair%%:*} "* ]] && offered+=("${pair##*:}")
done
read -r -a isas <<< "${LRJAX_ISAS:-${offered[*]}}"
for isa in "${isas[@]}"; do
  if [[ " ${offered[*]} " != *" $isa "* ]]; then
    echo "isa_matrix.sh: this CPU does not offer $isa (it offers: ${offered[*]})" >&2
    exit 2
  fi
done

mkdir -p "$(dirname "$out")"
model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
versions=$(python -c "import sys, jax, jaxlib; print(f'python {sys.version.split()[0]}, jax {jax.__version__}, jaxlib {jaxlib.__version__}')")
{
  echo "# benchmarks/isa_matrix.sh $*  ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo "# host: $(uname -srm), $model, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# $versions"
  echo "# CPU offers: ${offered[*]}; command: XLA_FLAGS=--xla_cpu_max_isa=ISA python -m pytest ${base[*]} $*"
  echo
  printf '%-8s %7s %7s %7s %8s %9s\n' ISA passed failed errors skipped seconds
} > "$out"

status=0
failures=()
for isa in "${isas[@]}"; do
  log="${out%.txt}_$isa.log"
  echo "== $isa -> $log"
  start=$(date +%s)
  XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_cpu_max_isa=$isa" \
    python -m pytest "${base[@]}" "$@" > "$log" 2>&1
  rc=$?
  seconds=$(($(date +%s) - start))
  last=$(grep -E '[0-9]+ (passed|failed|errors?|skipped|deselected)' "$log" | tail -1)
  count() {
    local n
    n=$(grep -oE "[0-9]+ $1" <<< "$last" | head -1 | cut -d' ' -f1)
    echo "${n:-0}"
  }
  printf '%-8s %7s %7s %7s %8s %9s\n' "$isa" "$(count passed)" "$(count failed)" \
    "$(count 'errors?')" "$(count skipped)" "$seconds" >> "$out"
  [ "$rc" -ne 0 ] && status=1
  while IFS= read -r line; do failures+=("$isa: $line"); done \
    < <(grep -E '^(FAILED|ERROR) ' "$log")
  if [ "$rc" -ne 0 ] && [ -z "$(grep -E '^(FAILED|ERROR) ' "$log")" ]; then
    failures+=("$isa: pytest exited with status $rc (see $log)")
  fi
  tail -1 "$log"
done

{
  echo
  if [ "${#failures[@]}" -eq 0 ]; then
    echo "no failures"
  else
    echo "failures:"
    printf '  %s\n' "${failures[@]}"
  fi
} >> "$out"
cat "$out"
exit "$status"
