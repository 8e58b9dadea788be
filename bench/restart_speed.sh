#!/usr/bin/env bash
# bench/restart_speed.sh: speed after a kill -9, over the cases that matter:
# a plain layer (l2) and a shard of a sharded one (l2.0 of l2 in 2 shards),
# configs/mnist-ff.yaml on 20 000 training samples, 12 epochs,
# with shared-memory frames on and off; in each run the stage is killed
# during training, during an evaluation and while it writes a checkpoint
# (bench/restart_speed.py: 3 kills a run, the supervisor's limit per stage).
# Each killed run has an untouched twin run before it (the machine's own
# drift is held out); prints each kill's after / before per round and the
# median over rounds; exits 1 if a median is under 80 %.
#   bash bench/restart_speed.sh [ROUNDS]   (default 2: 16 runs, 24 kills)
set -uo pipefail
cd "$(dirname "$0")/.."
[ -x build/ffstream ] || { echo "bench: build first (make build)" >&2; exit 2; }
rounds=${1:-2}
fail=0
for shm in true false; do
  for layer in plain sharded; do
    stage=l2 sets=(--set "shm=$shm")
    # (a sharded layer has no feedback edge yet: only the readout's is kept)
    [ "$layer" = sharded ] && stage=l2.0 sets+=(--set l2.shards=2 --set 'feedback=[{from: out, to: src}]')
    echo "== $layer layer ($stage), shm $shm"
    /usr/bin/python3 bench/restart_speed.py --stage "$stage" --kills train,eval,ckpt \
      --rounds "$rounds" --out "runs/restart-$layer-$shm" "${sets[@]}" || fail=1
  done
done
exit $fail
