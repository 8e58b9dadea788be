#!/usr/bin/env bash
# bench/kill_restart.sh: what a kill -9 of one layer mid-epoch costs. Runs a
# topology twice with the same seed, once untouched and once with STAGE
# killed (SIGKILL) AT seconds after start (the supervisor restarts it from
# its last checkpoint), and prints both test errors and the difference.
#   bash bench/kill_restart.sh [CONFIG] [STAGE] [AT_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-configs/mnist-ff.yaml}
stage=${2:-l2}
at=${3:-60}
exe=build/ffstream
[ -x "$exe" ] || { echo "bench: build first (make build)" >&2; exit 2; }
err() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['test_error'])" "$1/summary.json"; }

rm -rf runs/kill-base runs/kill-killed
echo "bench: uninterrupted: $exe run $cfg --quiet --out runs/kill-base"
$exe run "$cfg" --quiet --out runs/kill-base > runs/kill-base.log 2>&1
echo "bench: killed: $exe run $cfg --quiet --out runs/kill-killed, kill -9 $stage at ${at} s"
$exe run "$cfg" --quiet --out runs/kill-killed > runs/kill-killed.log 2>&1 &
launcher=$!
sleep "$at"
victim=$(pgrep -f -- "--name $stage --run-dir /tmp/ffs-$launcher" | head -1)
[ -n "$victim" ] || { echo "bench: no process for stage $stage" >&2; exit 1; }
kill -9 "$victim"
wait "$launcher"
grep -h "restarting\|is back" runs/kill-killed.log || true
base=$(err runs/kill-base)
killed=$(err runs/kill-killed)
python3 - "$base" "$killed" "$cfg" "$stage" "$at" <<'PY'
import sys
base, killed, cfg, stage, at = float(sys.argv[1]), float(sys.argv[2]), *sys.argv[3:]
print(f"kill -9 {stage} at {at} s on {cfg}: test error {100*base:.2f} % uninterrupted, "
      f"{100*killed:.2f} % killed and restarted: difference {100*(killed-base):+.2f} pp")
PY
