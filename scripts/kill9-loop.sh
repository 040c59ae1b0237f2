#!/usr/bin/env bash
# The kill -9 resume test, RUNS times (default 50) while two busy loops keep the CPUs loaded (so
# the test process is often descheduled between reading a writer's line and killing it, the
# moment its count once missed a cell). Stops at, and exits 1 on, the first failure, printing
# the end of its output. The venv must be installed (`make install`).
#   bash scripts/kill9-loop.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-50}"
python="${PYTHON:-.venv/bin/python}"
test="tests/sweep/test_results.py::test_five_kill_9_during_a_sweep_then_resume"
log="$(mktemp)"
load=()
stop_load() {
  for pid in "${load[@]}"; do kill "$pid" 2> /dev/null || true; done
  rm -f "$log"
}
trap stop_load EXIT
trap 'exit 130' INT TERM # so that the busy loops stop with the script
for _ in 1 2; do # the load is niced, the test is not
  nice -n 5 "$python" -c 'while True: pass' &
  load+=($!)
done
start=$SECONDS
for run in $(seq 1 "$runs"); do
  t0=$SECONDS
  if ! timeout 900 "$python" -m pytest -q -x -p no:cacheprovider "$test" > "$log" 2>&1; then
    echo "run $run of $runs FAILED after $((SECONDS - start)) s:"
    tail -n 40 "$log"
    exit 1
  fi
  echo "run $run of $runs passed ($((SECONDS - t0)) s)"
done
echo "all $runs runs passed in $((SECONDS - start)) s"
