#!/usr/bin/env bash
# Seconds from `make demo` to a dashboard that answers, on a fresh, empty store (the venv must
# already be installed: `make install`). Stops the dashboard and the background seeds afterwards.
#   bash scripts/time-to-dashboard.sh [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
port="${1:-8599}"
store="$(mktemp -d)"
export FAIRPRUNE_DATA_DIR="$store/data" FAIRPRUNE_MODELS_DIR="$store/models"
t0=$(date +%s.%N)
make demo PORT="$port" > "$store/make.log" 2>&1 &
until curl -sf "http://127.0.0.1:$port/_stcore/health" > /dev/null 2>&1; do
  if ! kill -0 $! 2> /dev/null; then echo "make demo stopped; see $store/make.log" >&2; exit 1; fi
  sleep 0.5
done
t1=$(date +%s.%N)
python3 -c "print(f'time to dashboard: {$t1 - $t0:.1f} s (store: $store)')"
pkill -f "streamlit run app.py --server.port $port" || true
pkill -f "fairprune demo" || true
