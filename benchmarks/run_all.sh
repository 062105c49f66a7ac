#!/usr/bin/env bash
# Runs every benchmark and keeps each one's output: bash benchmarks/run_all.sh [OUTDIR]
# On a GPU the wide-MLP rows use more steps and larger chunks (the CPU defaults would
# time a few microseconds of work); everything else runs with the scripts' defaults.
# Each script has a time limit (seconds, LRJAX_BENCH_LIMIT scales them) so that one
# slow machine cannot eat the whole run; a script cut short keeps what it printed.
set -uo pipefail
cd "$(dirname "$0")"
out=${1:-results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
scale=${LRJAX_BENCH_LIMIT:-1}
gpu=$(python3 -c "import jax; print(int(jax.default_backend() == 'gpu'))")
scaling_args=()
if [ "$gpu" = 1 ]; then
  scaling_args=(--ks 8,32,128,512,1024 --wide-steps 50 --wide-chunk 256)
fi

run() {  # run NAME LIMIT ARGS...
  local name=$1 limit=$2
  shift 2
  echo "== $name"
  timeout "$((limit * scale))" python3 "$name.py" "$@" 2>&1 | tee "$out/$name.txt"
}

run schedule_overhead 75
run recompiles 75
run range_test_speed 140
run range_test_scaling 150 "${scaling_args[@]}"
run suggestion_quality 90
run real_models 600
