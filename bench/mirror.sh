#!/usr/bin/env bash
# bench/mirror.sh: two mirrored models that teach each other, 30 epochs
# each run, one after another: the paper's setup (configs/mnist-mirror-paper.yaml,
# cosine agreement) on MNIST and Fashion-MNIST; the variant that does not
# collapse (configs/mnist-mirror.yaml: contrastive against the twin, infonce,
# plus each layer's label head) on MNIST, Fashion-MNIST and the
# 784-500-500-10 network; with the supervised twin term (supcon); its parts
# alone (twin-only: head 0, head-only: twin 0); the variant and head-only
# with seeds 2 and 3; backprop on the same networks
# (configs/mnist-mlp-backprop.yaml); and the PyTorch port
# bench/peer_mirror.py (peer-*: the paper's setup, the variant, its parts).
# Prints a markdown table: test error of the averaged models and of each,
# each hidden layer's linear-probe error and mean pairwise cosine between
# different samples (near 1: collapsed), from summary.json (the peer: no
# probes).
#   bash bench/mirror.sh [NAME...]   (default: all, in the order below)
set -euo pipefail
cd "$(dirname "$0")/.."
exe=build/ffstream
[ -x "$exe" ] || { echo "bench: build first (make build)" >&2; exit 2; }
out=${FFS_BENCH_OUT:-$(mktemp -d /tmp/ffs-mirror.XXXXXX)}
mkdir -p "$out"

hidden() { local s=(); for l in a1 a2 b1 b2; do s+=(--set "$l.$1=$2"); done; echo "${s[@]}"; }
fashion="--set data.set=fashion --set data.dir=data/fashion"
declare -A cfg args
add() { local n=$1 c=$2; shift 2; cfg[$n]=$c; args[$n]="$*"; }
add mnist-paper configs/mnist-mirror-paper.yaml
add fashion-paper configs/mnist-mirror-paper.yaml $fashion
add mnist-mirror configs/mnist-mirror.yaml
add fashion-mirror configs/fashion-mirror.yaml
add mnist-mirror-500 configs/mnist-mirror.yaml $(hidden units 500)
add mnist-supcon configs/mnist-mirror.yaml $(hidden objective supcon)
add mnist-twin-only configs/mnist-mirror.yaml $(hidden head 0)
add mnist-head-only configs/mnist-mirror.yaml $(hidden twin 0)
for s in 2 3; do
  add mnist-mirror-s$s configs/mnist-mirror.yaml --set seed=$s
  add mnist-head-only-s$s configs/mnist-mirror.yaml $(hidden twin 0) --set seed=$s
done
add mnist-backprop configs/mnist-mlp-backprop.yaml
add fashion-backprop configs/mnist-mlp-backprop.yaml $fashion
add mnist-backprop-500 configs/mnist-mlp-backprop.yaml --set l1.units=500 --set l2.units=500
variant="--tau 0.1 --lr 3e-4 --cooldown"
add peer-paper bench/peer_mirror.py --objective cosine --lr 1e-4
add peer-mirror bench/peer_mirror.py --objective infonce $variant --head 1
add peer-supcon bench/peer_mirror.py --objective supcon $variant --head 1
add peer-twin-only bench/peer_mirror.py --objective infonce $variant
add peer-head-only bench/peer_mirror.py --objective infonce $variant --head 1 --twin 0

names=("$@")
[ ${#names[@]} -eq 0 ] && names=(mnist-paper fashion-paper mnist-mirror fashion-mirror
                                 mnist-mirror-500 mnist-supcon mnist-twin-only mnist-head-only
                                 mnist-mirror-s2 mnist-mirror-s3 mnist-head-only-s2
                                 mnist-head-only-s3 mnist-backprop fashion-backprop
                                 mnist-backprop-500 peer-paper peer-mirror peer-supcon
                                 peer-twin-only peer-head-only)
echo "| run | config and overrides | test error | model a, b | probes a1, a2, b1, b2 |" \
  "pair cosine a1, a2, b1, b2 |"
echo "|---|---|---|---|---|---|"
for n in "${names[@]}"; do
  [ -n "${cfg[$n]:-}" ] || { echo "bench: no configuration '$n'" >&2; exit 2; }
  if [[ ${cfg[$n]} == *.py ]]; then # the PyTorch port: its last line
    # shellcheck disable=SC2086
    /usr/bin/python3 "${cfg[$n]}" ${args[$n]} >"$out/$n.log" 2>&1 ||
      { echo "bench: $n failed: $(tail -3 "$out/$n.log")" >&2; exit 1; }
    tail -1 "$out/$n.log" | python3 -c '
import sys
f = dict(kv.split("=", 1) for kv in sys.stdin.read().split()[1:])
pct = lambda v: "%.2f %%" % (100 * float(v))
cos = ", ".join("%.3f" % float(c) for c in f["pair_cosine"].split(","))
print("| %s | %s | %s | %s, %s | - | %s |" % (sys.argv[1], sys.argv[2].strip(), pct(f["test_error"]),
                                            pct(f["a"]), pct(f["b"]), cos))' "$n" "${cfg[$n]} ${args[$n]}"
    continue
  fi
  # shellcheck disable=SC2086
  "$exe" run "${cfg[$n]}" --quiet --out "$out/$n" ${args[$n]} >"$out/$n.log" 2>&1 ||
    { echo "bench: $n failed: $(tail -3 "$out/$n.log")" >&2; exit 1; }
  python3 - "$out/$n/summary.json" "$n" "${cfg[$n]} ${args[$n]}" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
per = s["test_error_per_layer"]
pct = lambda v: "-" if v is None else "%.2f %%" % (100 * v)
if "a_top" in per:
    models = "%s, %s" % (pct(per["a_top"]["softmax"]), pct(per["b_top"]["softmax"]))
    probes = ", ".join(pct(per[l]["softmax"]) for l in ("a1", "a2", "b1", "b2"))
    cos = ", ".join("%.3f" % per[l]["pair_cosine"] for l in ("a1", "a2", "b1", "b2"))
else:
    models = probes = cos = "-"
print("| %s | %s | %s | %s | %s | %s |" % (sys.argv[2], sys.argv[3].strip(), pct(s["test_error"]),
                                          models, probes, cos))
PY
done
