#!/usr/bin/env bash
# bench/multihost.sh: what spreading a run over hosts costs, side by side in
# one run: one epoch of configs/mnist-ff-hinton.yaml (training samples/s,
# from summary.json) on one host over ipc and shared memory; on one host
# over tcp with and without CURVE; over three hosts acted by network
# namespaces (tests/net/hosts.sh: src and l1 on the first, where the
# launcher runs, l2 on the second, l3 and the readout on the third; started
# with --launcher ssh through `ip netns exec`), CURVE on and off, and with
# 1 ms and 5 ms of delay added each way. The namespaces share this
# machine's cores: the figures are the transport's cost, not more compute.
# ROUNDS (default 2) rounds, the configurations alternating; prints a
# markdown table of the mean and each round. Needs root.
# usage: bash bench/multihost.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
exe=build/ffstream
[ -x "$exe" ] || { echo "bench: build first (make build)" >&2; exit 2; }
rounds=${1:-2}
prefix=ffb
out=$(mktemp -d /tmp/ffs-multihost.XXXXXX)
trap 'bash tests/net/hosts.sh down $prefix >/dev/null 2>&1 || true; rm -rf "$out"' EXIT
bash tests/net/hosts.sh down $prefix >/dev/null 2>&1 || true
bash tests/net/hosts.sh up $prefix 3 >/dev/null

hosts="hosts=[{name: ${prefix}1, address: 10.200.0.1}, {name: ${prefix}2, address: 10.200.0.2}, {name: ${prefix}3, address: 10.200.0.3}]"
spread=(--set "$hosts" --set l2.host=${prefix}2 --set l3.host=${prefix}3 --set out.host=${prefix}3
        --set "launch.ssh=ip netns exec {host} {cmd}" --launcher ssh)
names=("one host, ipc + shared memory" "one host, tcp, CURVE" "one host, tcp, plaintext"
       "three hosts, tcp, CURVE" "three hosts, tcp, plaintext" "three hosts, CURVE, +1 ms each way"
       "three hosts, CURVE, +5 ms each way")

# run K ROUND: one epoch in configuration K; prints its training samples/s
run() {
  local k=$1 dir="$out/c$1-r$2" ns=() args=()
  case $k in
    0) ;;
    1) args=(--set transport=tcp) ;;
    2) args=(--set transport=tcp --set security.curve=false) ;;
    3) ns=(ip netns exec ${prefix}1); args=("${spread[@]}") ;;
    4) ns=(ip netns exec ${prefix}1); args=("${spread[@]}" --set security.curve=false) ;;
    5) ns=(ip netns exec ${prefix}1); args=("${spread[@]}") ;;
    6) ns=(ip netns exec ${prefix}1); args=("${spread[@]}") ;;
  esac
  case $k in 5) bash tests/net/hosts.sh delay $prefix 1 ;; 6) bash tests/net/hosts.sh delay $prefix 5 ;; esac
  "${ns[@]}" "$exe" run configs/mnist-ff-hinton.yaml --epochs 1 --quiet --out "$dir" "${args[@]}" \
    >"$dir.log" 2>&1 || { echo "bench: configuration $k failed: $(tail -3 "$dir.log")" >&2; exit 1; }
  case $k in 5|6) bash tests/net/hosts.sh delay $prefix 0 ;; esac
  python3 -c "import json; print(json.load(open('$dir/summary.json'))['train_samples_per_s'])"
}

declare -A got
for r in $(seq 1 "$rounds"); do
  for k in 0 1 2 3 4 5 6; do
    got[$k,$r]=$(run $k $r)
    echo "bench: round $r, ${names[$k]}: ${got[$k,$r]} samples/s" >&2
  done
done

echo "| configs/mnist-ff-hinton.yaml, 1 epoch | samples/s (mean) | rounds | vs one host |"
echo "|---|---|---|---|"
base=""
for k in 0 1 2 3 4 5 6; do
  vals=""; sum=0
  for r in $(seq 1 "$rounds"); do
    vals="$vals${vals:+, }$(printf %.0f "${got[$k,$r]}")"
    sum=$(python3 -c "print($sum + ${got[$k,$r]})")
  done
  mean=$(python3 -c "print(round($sum / $rounds))")
  [ -z "$base" ] && base=$mean
  echo "| ${names[$k]} | $mean | $vals | $(python3 -c "print('%.2f' % ($mean / $base))") |"
done
