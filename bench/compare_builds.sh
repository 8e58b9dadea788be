#!/usr/bin/env bash
# bench/compare_builds.sh: training throughput of two ffstream binaries side
# by side, alternating (old, new, old, new, ...) so that the machine's drift
# falls on both: configs/mnist-ff-hinton.yaml in its fastest process form
# (triple frames, l1 in 2 shards, no weight average), 1 epoch, 1 000 test
# samples. Prints each run and the medians; the new binary's median as a
# fraction of the old one's.
#   bash bench/compare_builds.sh OLD_FFSTREAM NEW_FFSTREAM [ROUNDS]   (default 3)
# An old binary that refuses a key of today's config gets the config of its
# own commit: OLD_CONFIG=path.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 rounds=${3:-3}
cfg_new=configs/mnist-ff-hinton.yaml
cfg_old=${OLD_CONFIG:-$cfg_new}
sets=(--epochs 1 --quiet --set data.test_limit=1000 --set layer.eval_average=0
      --set train.triples=true --set l1.shards=2)
run() { # exe config out -> prints samples/s
  rm -rf "$3"
  "$1" run "$2" --out "$3" "${sets[@]}" > "$3.log" 2>&1
  python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['train_samples_per_s']))" "$3/summary.json"
}
o=() n=()
for r in $(seq 1 "$rounds"); do
  o+=("$(run "$old" "$cfg_old" runs/cmp-old)")
  n+=("$(run "$new" "$cfg_new" runs/cmp-new)")
  echo "bench: round $r: old ${o[-1]}, new ${n[-1]} samples/s"
done
python3 - "${o[*]}" "${n[*]}" <<'PY'
import statistics, sys
o = [float(x) for x in sys.argv[1].split()]
n = [float(x) for x in sys.argv[2].split()]
mo, mn = statistics.median(o), statistics.median(n)
print(f"old median {mo:.0f}, new median {mn:.0f} samples/s: new = {100 * mn / mo:.1f} % of old")
PY
echo "commands: <exe> run $cfg_new ${sets[*]}"
