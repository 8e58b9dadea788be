#!/usr/bin/env bash
# bench/plan_vs_hand.sh: the planner's choice against forms picked by hand,
# on k cores each (taskset -c 0..k-1), side by side in one run:
# configs/mnist-ff-hinton.yaml, 1 epoch of SAMPLES training samples (default
# 20000), 1 000 test samples, no weight average, the same seed.
#   bash bench/plan_vs_hand.sh [CORES ...]     default: 1 2 4 8 16, those this machine has
# For each k: "planned" (as shipped), then hand-picked shard counts for l1,
# l2, l3 in triple frames (HANDS_k, e.g. HANDS_16="4,6,6 5,5,5 3,4,4"; the
# defaults below), ROUNDS times each (default 2), alternating. Prints one
# line per run and a table of medians; the planned form's median as a share
# of the best hand-picked one's.
set -uo pipefail
cd "$(dirname "$0")/.."
exe=${FFS_FFSTREAM:-build/ffstream}
[ -x "$exe" ] || { echo "bench: $exe missing (make build)" >&2; exit 2; }
have=$(nproc)
samples=${SAMPLES:-20000}
rounds=${ROUNDS:-2}
mkdir -p runs
if [ $# -gt 0 ]; then list=("$@"); else list=(1 2 4 8 16); fi
declare -A hands=([1]="1,1,1 2,1,1" [2]="1,1,1 2,1,1 2,2,2" [4]="1,1,1 2,1,1 1,2,2 2,2,2 1,3,3"
                  [8]="2,2,2 2,3,3 3,3,3 2,4,4" [16]="4,4,4 4,5,5 5,5,5 4,6,6 3,6,6")
common=(--epochs 1 --quiet --set "data.train_limit=$samples" --set data.test_limit=1000
        --set layer.eval_average=0 --set train.triples=true)
sps() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['train_samples_per_s']))" "$1/summary.json" 2>/dev/null || echo 0; }
table="| cores | form | samples/s (median of $rounds) |"$'\n'"|---|---|---|"$'\n'
for k in "${list[@]}"; do
  if [ "$k" -gt "$have" ]; then echo "bench: $k cores: not measured (this machine has $have)"; continue; fi
  var="HANDS_$k"
  forms=(planned ${!var:-${hands[$k]:-}})
  declare -A got=()
  for r in $(seq 1 "$rounds"); do
    for f in "${forms[@]}"; do
      out=runs/pvh-$k-${f//,/-}
      rm -rf "$out"
      sets=()
      if [ "$f" != planned ]; then
        IFS=, read -r a b c <<< "$f"
        sets=(--set "l1.shards=$a" --set "l2.shards=$b" --set "l3.shards=$c")
      fi
      taskset -c "0-$(( k - 1 ))" "$exe" run configs/mnist-ff-hinton.yaml --out "$out" "${common[@]}" "${sets[@]}" > "$out.log" 2>&1
      v=$(sps "$out")
      echo "bench: $k cores, round $r, $f: $v samples/s ($(grep -o 'planned for.*' "$out.log" | head -1))"
      got[$f]+="$v "
    done
  done
  best=0 planned=0
  for f in "${forms[@]}"; do
    med=$(python3 -c "import statistics,sys; print(round(statistics.median(map(float, sys.argv[1].split()))))" "${got[$f]}")
    table+="| $k | $f | $med |"$'\n'
    [ "$f" = planned ] && planned=$med
    [ "$f" != planned ] && [ "$med" -gt "$best" ] && best=$med
  done
  [ "$best" -gt 0 ] && echo "bench: $k cores: planned $planned, best by hand $best samples/s: planned = $(python3 -c "print('%.1f' % (100 * $planned / $best))") % of it"
  unset got
done
echo
echo "$table"
echo "commands: taskset -c 0-<k-1> $exe run configs/mnist-ff-hinton.yaml ${common[*]} [--set lN.shards=S ...]"
