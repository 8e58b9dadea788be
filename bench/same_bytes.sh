#!/usr/bin/env bash
# bench/same_bytes.sh: do two ffstream binaries learn the same thing? Runs
# both on the same deterministic topology (random negatives and no feedback
# edge, so no timing enters the learning; 2 epochs of 3 000 samples) and
# compares every layer's checkpoint byte for byte.
#   bash bench/same_bytes.sh OLD_FFSTREAM NEW_FFSTREAM NAME CONFIG [--set K=V ...]
# e.g. bash bench/same_bytes.sh /tmp/old-ffstream build/ffstream shards \
#        configs/mnist-ff.yaml --set l2.shards=2 --set train.triples=true
# (an old binary that refuses a key of today's config needs the config of
# its own commit: git show COMMIT:configs/mnist-ff.yaml > old.yaml)
set -uo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 name=$3 cfg=$4
shift 4
common=(--epochs 2 --quiet --set data.train_limit=3000 --set data.test_limit=500
        --set train.negatives=random --set 'feedback=[]' --set train.ckpt_every_s=0 "$@")
for which in old new; do
  exe=$old
  [ "$which" = new ] && exe=$new
  rm -rf "runs/same-$name-$which"
  "$exe" run "$cfg" --out "runs/same-$name-$which" "${common[@]}" > "runs/same-$name-$which.log" 2>&1 ||
    { echo "$name: the $which binary failed:"; tail -3 "runs/same-$name-$which.log"; exit 1; }
done
same=0 differ=0
for f in "runs/same-$name-old"/ckpt/l*.safetensors; do
  if cmp -s "$f" "runs/same-$name-new/ckpt/$(basename "$f")"; then same=$((same + 1))
  else differ=$((differ + 1)); echo "  $name: $(basename "$f") differs"; fi
done
echo "$name: $same layer checkpoints identical, $differ differ"
[ "$differ" -eq 0 ] && [ "$same" -gt 0 ]
