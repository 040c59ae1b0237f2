#!/usr/bin/env bash
# Seconds from `make demo` to a dashboard that answers with the first chart's data in the store,
# on a fresh, empty store (the venv must already be installed: `make install`). `make demo` opens
# the dashboard only after the dense model and seed 0's top-level cells are stored, so the time to
# the dashboard is the time to the first chart. Stops what it started afterwards (its own process
# group: the dashboard and the background seeds), nobody else's.
#   bash scripts/time-to-dashboard.sh [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
port="${1:-8599}"
store="$(mktemp -d)"
export FAIRPRUNE_DATA_DIR="$store/data" FAIRPRUNE_MODELS_DIR="$store/models"
t0=$(date +%s.%N)
setsid make demo PORT="$port" > "$store/make.log" 2>&1 &
group=$!
trap 'kill -TERM -- "-$group" 2> /dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/_stcore/health" > /dev/null 2>&1; do
  if ! kill -0 "$group" 2> /dev/null; then echo "make demo stopped; see $store/make.log" >&2; exit 1; fi
  sleep 0.5
done
t1=$(date +%s.%N)
cells=$(.venv/bin/python -c "
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
print(con.execute(\"SELECT COUNT(*) FROM cells WHERE criterion != 'dense'\").fetchone()[0])
" "$store/data/results.sqlite" 2> /dev/null || echo "?")
python3 -c "print(f'time to dashboard (first chart): {$t1 - $t0:.1f} s; pruned cells stored: $cells; load average: $(cut -d' ' -f1 /proc/loadavg) (store: $store)')"
