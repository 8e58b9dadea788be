#!/usr/bin/env bash
# bench/throughput.sh: training throughput in one run, side by side:
#   - the physical limit: cores x single-core sgemm peak (the BLAS in use,
#     measured now) / FLOPs per training sample;
#   - ffstream on configs/mnist-ff-hinton.yaml (784-1000x3, batch 100),
#     one epoch through the pipeline of pinned processes;
#   - the PyTorch peer (bench/peer_torch.py, same recipe and arithmetic) in
#     several thread / BLAS configurations, and its out-of-the-box default.
# Appends the table, the machine and the commands to docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=build/ffstream
peak_bin=build/sgemm_peak
[ -x "$exe" ] && [ -x "$peak_bin" ] || { echo "bench: build first (make build)" >&2; exit 2; }
cores=$(nproc)
coretype=""
grep -qw avx512f /proc/cpuinfo && coretype=SkylakeX # what ffstream's launcher picks too

echo "bench: sgemm peak (1 thread, OPENBLAS_CORETYPE=${coretype:-auto})"
peak_out=$(OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=$coretype $peak_bin 1)
echo "$peak_out"
peak=$(echo "$peak_out" | awk '/^peak/{print $2}')
flops=$(python3 -c "print(5 * 2 * (784 * 1000 + 1000 * 1000 * 2))") # 5 products per layer
limit=$(python3 -c "print(round($cores * $peak * 1e9 / $flops))")

echo "bench: ffstream, one epoch of configs/mnist-ff-hinton.yaml"
rm -rf runs/perf-ffstream
ffs_cmd="$exe run configs/mnist-ff-hinton.yaml --epochs 1 --set data.test_limit=1000 --quiet --out runs/perf-ffstream"
$ffs_cmd > runs/perf-ffstream.log 2>&1
ffs=$(python3 -c "import json; print(round(json.load(open('runs/perf-ffstream/summary.json'))['train_samples_per_s']))")
util=$(python3 -c "import json; s=json.load(open('runs/perf-ffstream/summary.json')); print(', '.join('%s %.0f %%' % (x['name'], 100 * x['utilization']) for x in s['stages']))")

torch_rows=""
best=0
best_cfg=""
run_torch() { # label torch_threads [VAR=value ...]; torch_threads 0 = torch's default
  local label=$1 threads=$2; shift 2
  local out sps cmd="/usr/bin/python3 bench/peer_torch.py --threads $threads"
  out=$(env "$@" $cmd 2>&1 | tail -1)
  sps=$(echo "$out" | sed -n 's/.*samples\/s=\([0-9]*\).*/\1/p')
  echo "bench: torch $label: ${sps:-failed ($out)}"
  torch_rows+="| PyTorch peer, $label | ${sps:-failed} | \`$* $cmd\` |"$'\n'
  if [ -n "$sps" ] && [ "$sps" -gt "$best" ]; then # the default counts too
    best=$sps best_cfg=$label
  fi
}
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  for t in 1 2; do
    for b in 1 2; do
      run_torch "torch $t thread(s), OpenBLAS $b thread(s), ${coretype:-auto} kernels" $t \
        OPENBLAS_NUM_THREADS=$b OPENBLAS_CORETYPE=$coretype
    done
  done
  run_torch "out of the box (torch and OpenBLAS defaults)" 0
else
  echo "bench: no torch for /usr/bin/python3 (apt-get install python3-torch); PyTorch not measured"
fi

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
{
  echo
  echo "## Training throughput, $(date -u +%Y-%m-%d)"
  echo
  echo "Machine: $cores cores, ${cpu:-unknown CPU}, $(. /etc/os-release && echo "$PRETTY_NAME")."
  echo "Command: \`bash bench/throughput.sh\` (everything below from that one run)."
  echo
  echo "| what | training samples/s | command |"
  echo "|---|---|---|"
  echo "| physical limit: $cores cores x $peak GFLOP/s / $(python3 -c "print($flops / 1e6)") MFLOP per sample | $limit | \`build/sgemm_peak 1\` (OPENBLAS_CORETYPE=${coretype:-auto}) |"
  echo "| ffstream, 5 pinned processes | $ffs | \`$ffs_cmd\` |"
  printf '%s' "$torch_rows"
  echo
  echo "- ffstream / limit: $(python3 -c "print('%.0f %%' % (100 * $ffs / $limit))")"
  [ "$best" -gt 0 ] && echo "- ffstream / best PyTorch configuration ($best_cfg): $(python3 -c "print('%.2fx' % ($ffs / $best))")"
  echo "- ffstream stage utilization (compute / wall): $util"
  echo
  echo "sgemm shapes (1 thread):"
  echo
  echo '```'
  echo "$peak_out"
  echo '```'
} >> docs/PERFORMANCE.md
echo "bench: appended to docs/PERFORMANCE.md"
