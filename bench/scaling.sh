#!/usr/bin/env bash
# bench/scaling.sh: training throughput of 784-2000x4 (configs/mnist-ff-2000x4.yaml,
# batch 100, the config's own arithmetic, hard negatives) against the number of
# cores, in one run:
#   bash bench/scaling.sh [CORES ...]     default: 1 2 4 8 16, those this machine has
# On k cores (taskset -c 0..k-1; the launcher pins within them) the four layers
# run whole up to 4 cores and in k/4 shards each from 8 cores on (8: 2 shards,
# 16: 4), so there are about as many layer processes as cores. Efficiency(k) =
# throughput(k) / (k x throughput(1)); the target is >= 0.85 at 16 cores.
# Each point trains on SAMPLES (default 12000) training samples and evaluates
# 500 test samples. Appends a section to docs/PERFORMANCE.md and writes
# docs/scaling-2000x4.csv. FFS_BENCH_DOCS=0 prints only (for a trial run).
# On a machine without this build's libraries (the device): bench/bundle.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${FFS_FFSTREAM:-build/ffstream}
[ -x "$exe" ] || { echo "bench: build first (make build)" >&2; exit 2; }
have=$(nproc)
samples=${SAMPLES:-12000}
if [ $# -gt 0 ]; then list=("$@"); else list=(1 2 4 8 16); fi
for k in "${list[@]}"; do
  [[ "$k" =~ ^[0-9]+$ ]] && [ "$k" -ge 1 ] || { echo "bench: cores must be whole numbers >= 1, not '$k'" >&2; exit 2; }
done

rows=""
csv="cores,shards_per_layer,processes,samples_per_s,efficiency"
base=0
for k in "${list[@]}"; do
  if [ "$k" -gt "$have" ]; then
    echo "bench: $k cores: not measured (this machine has $have)"
    rows+="| $k | - | - | not measured: this machine has $have cores | - | - |"$'\n'
    continue
  fi
  shards=1
  [ "$k" -ge 8 ] && shards=$(( k / 4 ))
  sets=(--set "data.train_limit=$samples" --set data.test_limit=500 --set layer.eval_average=0)
  # named in full (shards: 1 too), so that the launcher's planner stays out
  for l in l1 l2 l3 l4; do sets+=(--set "$l.shards=$shards"); done
  out=runs/scaling-$k
  rm -rf "$out"
  cmd="taskset -c 0-$(( k - 1 )) $exe run configs/mnist-ff-2000x4.yaml --epochs 1 --quiet --out $out ${sets[*]}"
  echo "bench: $cmd"
  $cmd > "$out.log" 2>&1 || { echo "bench: run on $k cores failed; log $out.log" >&2; tail -5 "$out.log" >&2; exit 1; }
  sps=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['train_samples_per_s']))" "$out/summary.json")
  procs=$(( 2 + 4 * shards ))
  [ "$base" -eq 0 ] && [ "$k" -eq 1 ] && base=$sps
  eff=$( [ "$base" -gt 0 ] && python3 -c "print('%.2f' % ($sps / ($k * $base)))" || echo n/a)
  echo "bench: $k cores: $sps samples/s, efficiency $eff"
  rows+="| $k | $shards | $procs | $sps | $eff | \`$cmd\` |"$'\n'
  csv+=$'\n'"$k,$shards,$procs,$sps,$eff"
done

[ "${FFS_BENCH_DOCS:-1}" = 0 ] && exit 0
echo "$csv" > docs/scaling-2000x4.csv
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
{
  echo
  echo "## Scaling over cores, 784-2000x4, $(date -u +%Y-%m-%d)"
  echo
  echo "Machine: $have cores, ${cpu:-unknown CPU}, $(. /etc/os-release && echo "$PRETTY_NAME")."
  echo "Command: \`bash bench/scaling.sh ${list[*]}\` (everything below from that one run;"
  echo "$samples training samples per point, the config's arithmetic, eval_average off)."
  echo
  echo "| cores | shards per layer | processes | training samples/s | efficiency (vs cores x 1 core) | command |"
  echo "|---|---|---|---|---|---|"
  printf '%s' "$rows"
} >> docs/PERFORMANCE.md
echo "bench: appended to docs/PERFORMANCE.md, wrote docs/scaling-2000x4.csv"
