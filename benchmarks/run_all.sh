#!/usr/bin/env bash
# Runs every benchmark and keeps each one's output: bash benchmarks/run_all.sh [OUTDIR]
# Each script's output goes to OUTDIR/NAME_MACHINE.txt (OUTDIR defaults to results/,
# MACHINE to $LRJAX_BENCH_MACHINE, else "gpu" or "cpuN" for N cores): the files the
# tables of benchmarks/README.md are copied from, checked by tests/test_benchmark_numbers.py.
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
if [ "$gpu" = 1 ]; then default_machine=gpu; else default_machine="cpu$(nproc)"; fi
machine=${LRJAX_BENCH_MACHINE:-$default_machine}
scaling_args=()
if [ "$gpu" = 1 ]; then
  scaling_args=(--ks 8,32,128,512,1024 --wide-steps 50 --wide-chunk 256)
fi

run() {  # run NAME LIMIT ARGS...
  local name=$1 limit=$2
  shift 2
  local file="$out/${name}_${machine}.txt"
  echo "== $name -> $file"
  {
    echo "# benchmarks/$name.py $*  (run_all.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), limit $((limit * scale)) s)"
    echo "# host: $(uname -srm), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    timeout "$((limit * scale))" python3 "$name.py" "$@" 2>&1
  } | tee "$file"
}

run schedule_overhead 75
run recompiles 75
run range_test_speed 140
run range_test_scaling 150 "${scaling_args[@]}"
run suggestion_quality 900
run suggestion_schedules 900
run tune_problems 300
run tune_quality 2400
run tune_ablation 900
run cli_startup 240 --out -  # its report is this run's output, kept by run() like the others
run real_models 600
run strategies 600 --ks 8 --steps 50 --repeats 7
run transfer 900 --train  # from the cache of transfer_problems.py (80 minutes to rebuild: not rerun here)
