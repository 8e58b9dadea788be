#!/usr/bin/env bash
# bench/dualprop.sh: dual propagation and backprop through the same dp_layer
# pipeline (configs/mnist-dualprop.yaml, configs/mnist-backprop.yaml and the
# Fashion-MNIST twins), and PyTorch backprop on the same network.
#   bash bench/dualprop.sh accuracy [NAME...]  30-epoch runs, one after another:
#       each prints its test error (summary.json) and training samples/s
#   bash bench/dualprop.sh speed [ROUNDS]       one epoch of each pipeline form and
#       of bench/peer_dualprop.py (backprop, threads 1 and 2, glibc keeping memory
#       mapped), the configurations alternating, ROUNDS (default 2) rounds; a
#       markdown table of training samples/s and the ratio to PyTorch's best
# The accuracy runs are deterministic in lockstep timing (the figures do not
# depend on the machine's load); their samples/s do.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=build/ffstream
[ -x "$exe" ] || { echo "bench: build first (make build)" >&2; exit 2; }
mode=${1:-speed}
shift || true
out=${FFS_BENCH_OUT:-$(mktemp -d /tmp/ffs-dualprop.XXXXXX)}
mkdir -p "$out"

# every dp_layer's KEY set to VALUE; hidden: the layers below the top
all() { local s=(); for l in l1 l2 l3 l4 top; do s+=(--set "$l.$1=$2"); done; echo "${s[@]}"; }
hidden() { local s=(); for l in l1 l2 l3 l4; do s+=(--set "$l.$1=$2"); done; echo "${s[@]}"; }

# one configuration: NAME CONFIG [--set ...]
declare -A cfg args
add() { local n=$1 c=$2; shift 2; cfg[$n]=$c; args[$n]="$*"; }
add mnist-dp-a0.5 configs/mnist-dualprop.yaml
add mnist-dp-a0 configs/mnist-dualprop.yaml $(all alpha 0)
add mnist-dp-a1 configs/mnist-dualprop.yaml $(all alpha 1)
add mnist-dp-pipelined configs/mnist-dualprop.yaml --set train.timing=pipelined
add mnist-bp configs/mnist-backprop.yaml
add mnist-bp-pipelined configs/mnist-backprop.yaml --set train.timing=pipelined
add fashion-dp-a0.5 configs/fashion-dualprop.yaml
add fashion-bp configs/fashion-backprop.yaml
# the dampened dyads in every hidden layer
add mnist-dp-damped configs/mnist-dualprop.yaml $(hidden dampened true)
add mnist-dp-damped-a0 configs/mnist-dualprop.yaml $(all alpha 0) $(hidden dampened true)
add mnist-dp-damped-a1 configs/mnist-dualprop.yaml $(all alpha 1) $(hidden dampened true)
# with the layer block's default weight decay, 0.001 (added to Adam's gradient)
wd="--set layer.weight_decay=0.001"
add mnist-dp-a0.5-wd configs/mnist-dualprop.yaml $wd
add mnist-dp-a0-wd configs/mnist-dualprop.yaml $(all alpha 0) $wd
add mnist-dp-a1-wd configs/mnist-dualprop.yaml $(all alpha 1) $wd
add mnist-dp-pipelined-wd configs/mnist-dualprop.yaml --set train.timing=pipelined $wd
add mnist-bp-wd configs/mnist-backprop.yaml $wd
add fashion-dp-a0.5-wd configs/fashion-dualprop.yaml $wd
add fashion-bp-wd configs/fashion-backprop.yaml $wd
add mnist-dp-damped-wd configs/mnist-dualprop.yaml $(hidden dampened true) $wd

# run NAME DIR [EPOCHS]: prints "test_error samples_per_s"
run() {
  local n=$1 dir=$2 ep=() ; [ -n "${3:-}" ] && ep=(--epochs "$3")
  # shellcheck disable=SC2086
  "$exe" run "${cfg[$n]}" "${ep[@]}" --quiet --out "$dir" ${args[$n]} >"$dir.log" 2>&1 ||
    { echo "bench: $n failed: $(tail -3 "$dir.log")" >&2; exit 1; }
  python3 -c "import json; s = json.load(open('$dir/summary.json')); \
print(s['test_error'], s['train_samples_per_s'])"
}

if [ "$mode" = accuracy ]; then
  names=("$@")
  [ ${#names[@]} -eq 0 ] && names=(mnist-dp-a0.5 mnist-bp fashion-dp-a0.5 fashion-bp mnist-dp-a0
                                   mnist-dp-a1 mnist-dp-pipelined mnist-bp-pipelined)
  echo "| run | config and overrides | test error | training samples/s |"
  echo "|---|---|---|---|"
  for n in "${names[@]}"; do
    [ -n "${cfg[$n]:-}" ] || { echo "bench: no configuration '$n'" >&2; exit 2; }
    read -r err sps < <(run "$n" "$out/$n")
    printf '| %s | %s %s | %.2f %% | %.0f |\n' "$n" "${cfg[$n]}" "${args[$n]}" \
      "$(python3 -c "print(100 * $err)")" "$sps"
  done
  exit 0
fi

usage="usage: bash bench/dualprop.sh accuracy [NAME...] | speed [ROUNDS]"
[ "$mode" = speed ] || { echo "$usage" >&2; exit 2; }
rounds=${1:-2}
keep="MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456"
peer() { # THREADS: PyTorch backprop, one epoch; prints samples/s
  env $keep /usr/bin/python3 bench/peer_dualprop.py --rule backprop --epochs 1 --threads "$1" \
    --test-limit 1000 | awk '/^peer_dualprop/ { for (i = 1; i <= NF; i++) if ($i ~ /^samples/) {
      split($i, a, "="); print a[2] } }'
}
forms=(mnist-dp-a0.5 mnist-dp-pipelined mnist-dp-damped mnist-bp mnist-bp-pipelined torch1 torch2)
declare -A got
for r in $(seq 1 "$rounds"); do
  for k in "${forms[@]}"; do
    case $k in
      torch*) got[$k,$r]=$(peer "${k#torch}") ;;
      *) read -r _ got[$k,$r] < <(run "$k" "$out/$k-r$r" 1) ;;
    esac
    echo "bench: round $r, $k: ${got[$k,$r]} samples/s" >&2
  done
done
declare -A mean
for k in "${forms[@]}"; do
  s=0; for r in $(seq 1 "$rounds"); do s=$(python3 -c "print($s + ${got[$k,$r]})"); done
  mean[$k]=$(python3 -c "print(round($s / $rounds))")
done
best=$(( ${mean[torch1]} > ${mean[torch2]} ? ${mean[torch1]} : ${mean[torch2]} ))
echo "| 784-1000x4-10, batch 100, 1 epoch of MNIST | samples/s (mean) | rounds |" \
  "vs PyTorch's best |"
echo "|---|---|---|---|"
for k in "${forms[@]}"; do
  vals=""
  for r in $(seq 1 "$rounds"); do vals="$vals${vals:+, }$(printf %.0f "${got[$k,$r]}")"; done
  case $k in
    torch1) label="PyTorch backprop, 1 thread" ;; torch2) label="PyTorch backprop, 2 threads" ;;
    *) label="ffstream $k (${cfg[$k]} ${args[$k]})" ;;
  esac
  echo "| $label | ${mean[$k]} | $vals | $(python3 -c "print('%.2f' % (${mean[$k]} / $best))") |"
done
