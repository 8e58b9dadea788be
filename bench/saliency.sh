#!/usr/bin/env bash
# saliency.sh: how right a finished FF run's saliency maps are, next to a
# backprop MLP's. Runs `ffstream saliency RUN_DIR --deletion` (goodness
# occlusion, goodness attribution, attribution x input, a random order) and
# bench/peer_saliency.py (an MLP of the run's sizes, trained on the run's
# training samples for the run's epochs: gradient x input, a random order)
# on the same first N test images, and prints one markdown table of the
# deletion AUCs (lower = the map found what the decision rests on).
#   bench/saliency.sh RUN_DIR mnist|fashion [N]
# Run from the folder the run was started in (its topology path is relative
# to it). FFSTREAM names the binary [build/ffstream].
set -euo pipefail
run=${1:?usage: bench/saliency.sh RUN_DIR mnist|fashion [N]}
set_name=${2:?usage: bench/saliency.sh RUN_DIR mnist|fashion [N]}
n=${3:-1000}
ffs=${FFSTREAM:-build/ffstream}
out=$run/saliency

topo=$(sed -n 's/^ *"topology": "\(.*\)",$/\1/p' "$run/summary.json")
sets=()
[ -f "$run/sets" ] && while IFS= read -r line; do
  [ -n "$line" ] && sets+=(--set "$line")
done < "$run/sets"
# the FF layers' widths, each layer once (a sharded layer is listed per shard)
sizes=$("$ffs" check "$topo" "${sets[@]}" | awk '$2 == "ff_layer" {
  name = $1; sub(/\.[0-9]+$/, "", name)
  if (!(name in seen)) { seen[name] = 1; s = s ? s "," $6 : $4 "," $6 } } END { print s }')
epochs=$(sed -n 's/^train\.epochs=//p' "$run/sets" 2>/dev/null | tail -1)
limit=$(sed -n 's/^data\.train_limit=//p' "$run/sets" 2>/dev/null | tail -1)

mkdir -p "$out"
nice -n 15 "$ffs" saliency "$run" --deletion --test-limit "$n" --out "$out" | tee "$out/ff.log"
nice -n 15 /usr/bin/python3 bench/peer_saliency.py --data "data/$set_name" --sizes "$sizes" \
  --epochs "${epochs:-3}" --train-limit "${limit:-0}" --test-limit "$n" | tee "$out/mlp.log"

ff_err=$(sed -n 's/.*energy test error on them \([0-9.]*\) %.*/\1/p' "$out/ff.log")
peer=$(tail -1 "$out/mlp.log")
val() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$peer"; }
echo
echo "Deletion test, $set_name, the first $n test images (run $run, FF test error on them" \
     "$ff_err %, MLP $(awk "BEGIN { printf \"%.2f\", 100 * $(val test_error) }") %)"
echo
echo "| map | deletion AUC (lower = better) |"
echo "| --- | --- |"
awk -F, 'NR > 1 { printf "| FF %s | %.4f +- %.4f |\n", $1, $3, $4 }' "$out/deletion.csv"
printf "| MLP gradient x input | %.4f +- %.4f |\n" "$(val grad_x_input_auc)" \
  "$(val grad_x_input_se)"
printf "| MLP random | %.4f +- %.4f |\n" "$(val random_auc)" "$(val random_se)"
