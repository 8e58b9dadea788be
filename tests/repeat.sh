#!/usr/bin/env bash
# tests/repeat.sh: the Check suites N times in a row, on the optimized build
# and under ASan + UBSan, with a CPU-heavy process running beside them the
# whole time (a loaded 2-core machine, as CI may be). Stops at the first
# failure and shows its output. Builds both trees first (make test's way).
#   bash tests/repeat.sh [N]    (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
make build data >/dev/null
cmake -S . -B build-asan -DFFS_SANITIZE=ON >/dev/null
cmake --build build-asan -j 2 >/dev/null
# the load: one busy loop per core, niced like nothing else
hog() { while :; do :; done; }
hogs=()
for _ in $(seq 1 "$(nproc)"); do hog & hogs+=($!); done
trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT
echo "repeat: $n rounds of ctest on build/ and build-asan/, $(nproc) busy loops beside them"
t0=$(date +%s)
for i in $(seq 1 "$n"); do
  for b in build build-asan; do
    if ! out=$(cd "$b" && ctest -j 1 --output-on-failure 2>&1); then
      echo "$out"
      echo "repeat: round $i failed on $b/ after $(( $(date +%s) - t0 )) s"
      exit 1
    fi
    echo "repeat: round $i $b/: $(echo "$out" | grep -E 'tests passed' | tail -1)"
  done
done
echo "repeat: $n rounds passed on both builds in $(( $(date +%s) - t0 )) s"
