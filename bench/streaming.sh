#!/usr/bin/env bash
# bench/streaming.sh: streaming one sample per frame (batch 1), in one run:
#   - ZeroMQ's own one-way latency on ipc for a frame of that size
#     (build/zmq_pingpong), the baseline for the per-hop overhead;
#   - ffstream at batch 1, 784-500-500 (configs/stream-784-500-500.yaml) and
#     784-2000x4 (configs/mnist-ff-2000x4.yaml at batch 1):
#       as fast as it goes: training samples/s and the end-to-end latency
#       per frame under that load (source emits -> readout has every
#       layer's report);
#       paced (train.pace_us, the pipeline idle when a frame arrives): the
#       latency of evaluation frames (no learning) and the transport's share
#       per hop, (latency - the compute the frame carries) / hops, against
#       ZeroMQ's one-way latency both back to back and at the same pace
#       (zmq_pingpong --gap-us: waking an idle core costs more than a busy one);
#   - the PyTorch peer (bench/peer_torch.py) at batch 1 on the same networks.
# Appends the figures, the machine and the commands to docs/PERFORMANCE.md.
#   bash bench/streaming.sh        (STREAM_SAMPLES=N: training samples, 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
exe=build/ffstream
zpp=build/zmq_pingpong
[ -x "$exe" ] && [ -x "$zpp" ] || { echo "bench: build first (make build)" >&2; exit 2; }
n=${STREAM_SAMPLES:-3000}
coretype=""
grep -qw avx512f /proc/cpuinfo && coretype=SkylakeX # what ffstream's launcher picks too

# a batch-1 frame off the source: 784 floats + header + arrays, about 3.3 KB
zcmd="$zpp --transport ipc --bytes 3300 --iters 20000"
echo "bench: $zcmd"
zline=$($zcmd | tail -1)
echo "$zline"
zow50=$(echo "$zline" | sed -n 's/.*oneway_p50_us=\([0-9.]*\).*/\1/p')
zow99=$(echo "$zline" | sed -n 's/.*oneway_p99_us=\([0-9.]*\).*/\1/p')

rows=""
zpaced=""
run_ffs() { # label config samples test_samples [--set ...]
  local label=$1 cfg=$2 ns=$3 nt=$4; shift 4
  local out=runs/stream-$label
  local base="$exe run $cfg --quiet --epochs 1 --set train.batch=1 --set train.eval_batch=1 --set data.train_limit=$ns --set data.test_limit=$nt $*"
  rm -rf "$out" "$out-paced"
  echo "bench: $base --out $out"
  $base --out "$out" > "$out.log" 2>&1
  # paced: one frame every 2x the time a whole sample (3 frames) took above,
  # so that each frame finds the pipeline idle
  local pace
  pace=$(python3 -c "import json; s=json.load(open('$out/summary.json')); print(int(2e6 / max(s['train_samples_per_s'], 1)))")
  echo "bench: $base --set train.pace_us=$pace --out $out-paced"
  $base --set train.pace_us="$pace" --out "$out-paced" > "$out-paced.log" 2>&1
  # ZeroMQ alone at that pace: about 10 s of round trips, at least 200
  local zpcmd zpline
  zpcmd="$zpp --transport ipc --bytes 3300 --warmup 20 --iters $(( pace > 50000 ? 200 : 10000000 / pace )) --gap-us $pace"
  echo "bench: $zpcmd"
  zpline=$($zpcmd | tail -1)
  echo "$zpline"
  local zpow50
  zpow50=$(echo "$zpline" | sed -n 's/.*oneway_p50_us=\([0-9.]*\).*/\1/p')
  zpaced+="- at the pace of the $label run: one-way p50 $zpow50 us (\`$zpcmd\`)"$'\n'
  rows+=$(python3 - "$out" "$out-paced" "$label" "$zow50" "$base" "$pace" "$zpow50" <<'PY'
import json, sys
out, paced, label, zow, cmd, pace, zpow = sys.argv[1:8]
s = json.load(open(out + "/summary.json"))
p = json.load(open(paced + "/summary.json"))
lt, le = s["latency"]["train"], p["latency"]["eval"]
hop = le["hop_p50_us"]
print(f"| {label} | {s['train_samples_per_s']:.0f} | {lt['p50_us'] / 1e3:.1f} / {lt['p99_us'] / 1e3:.1f} ms "
      f"| {le['p50_us']:.0f} / {le['p99_us']:.0f} us | {hop:.0f} us = {hop / float(zow):.1f}x / {hop / float(zpow):.1f}x "
      f"| `{cmd}` (paced: `--set train.pace_us={pace}`) |")
PY
)$'\n'
}
run_ffs 784-500-500 configs/stream-784-500-500.yaml "$n" 300
run_ffs 784-2000x4 configs/mnist-ff-2000x4.yaml $((n / 10)) 100 \
  --set layer.lr=0.0001 --set l1.lr=0.0001 --set train.pairs=true --set layer.eval_average=0 \
  --set train.negatives=random --set feedback=[]

torch_rows=""
run_torch() { # label units layers batches torch_threads [VAR=value ...]
  local label=$1 units=$2 layers=$3 batches=$4 threads=$5; shift 5
  local cmd="/usr/bin/python3 bench/peer_torch.py --batch 1 --units $units --layers $layers --batches $batches --warmup 20 --threads $threads"
  local out sps
  out=$(env "$@" $cmd 2>&1 | tail -1)
  sps=$(echo "$out" | sed -n 's/.*samples\/s=\([0-9]*\).*/\1/p')
  echo "bench: torch $label: ${sps:-failed ($out)}"
  torch_rows+="| PyTorch peer, $label | ${sps:-failed} | \`$* $cmd\` |"$'\n'
}
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  for net in "500 2 $((n / 3))" "2000 4 $((n / 30))"; do
    set -- $net
    run_torch "784-$1x$2, torch 1 thread, OpenBLAS 1 thread" "$1" "$2" "$3" 1 \
      OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=$coretype
    # glibc otherwise unmaps and remaps every large tensor each step
    run_torch "784-$1x$2, torch 1 thread, OpenBLAS 1 thread, malloc keeps memory" "$1" "$2" "$3" 1 \
      OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=$coretype MALLOC_MMAP_THRESHOLD_=4294967296 \
      MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456
    run_torch "784-$1x$2, out of the box" "$1" "$2" "$3" 0
  done
else
  echo "bench: no torch for /usr/bin/python3 (apt-get install python3-torch); PyTorch not measured"
fi

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
{
  echo
  echo "## Streaming at batch 1, $(date -u +%Y-%m-%d)"
  echo
  echo "Machine: $(nproc) cores, ${cpu:-unknown CPU}, $(. /etc/os-release && echo "$PRETTY_NAME")."
  echo "Command: \`bash bench/streaming.sh\` (everything below from that one run)."
  echo
  echo "ZeroMQ alone, ipc, 3300-byte messages:"
  echo "- back to back: one-way p50 $zow50 us, p99 $zow99 us (\`$zcmd\`)"
  printf '%s' "$zpaced"
  echo
  echo "| network | training samples/s | latency under load, p50 / p99 | paced eval latency, p50 / p99 | transport per hop, p50 (vs ZeroMQ one-way back to back / at the same pace) | command |"
  echo "|---|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
  echo "| PyTorch at batch 1 | training samples/s | command |"
  echo "|---|---|---|"
  printf '%s' "$torch_rows"
} >> docs/PERFORMANCE.md
echo "bench: appended to docs/PERFORMANCE.md"
