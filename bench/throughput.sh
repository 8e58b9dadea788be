#!/usr/bin/env bash
# bench/throughput.sh: training throughput in one run, side by side:
#   - the physical limit: cores x single-core sgemm peak (the BLAS in use,
#     measured now) / FLOPs per training sample;
#   - ffstream on configs/mnist-ff-hinton.yaml (784-1000x3, batch 100),
#     one epoch through the pipeline of pinned processes: 5 processes; l2 in
#     2 shards (6 processes: 3 equal layers do not split evenly over 2
#     cores, 4 half-and-whole pieces do); every layer in 2 shards; one step
#     per positive + negative pair (update: pair, and train.pairs: both in
#     one frame; train.triples: the neutral rows in that frame too, with l1
#     in 2 shards); on all cores and on one; with the FLOP/s inside each
#     ff_layer stage (per second of its CPU time) against the sgemm peak.
#     The peer keeps no moving average of the weights, so these runs set
#     layer.eval_average=0; one more run shows what the config's costs.
#     Every shape is named in full (the rows pin each layer's shards and the
#     frame form), except the config as shipped, which runs in the form the
#     launcher's planner chooses: it and the fastest hand-picked form run
#     alternately, two rounds each;
#   - the PyTorch peer (bench/peer_torch.py, same recipe and arithmetic) in
#     several thread / BLAS configurations, and its out-of-the-box default.
# Appends the table, the machine and the commands to docs/PERFORMANCE.md;
# writes docs/scaling.csv and plots it (docs/scaling.png, bench/plot_scaling.py).
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

# ffstream: one epoch of configs/mnist-ff-hinton.yaml in several shapes, on
# all cores and on one (taskset: the launcher pins within it)
ffs_rows=""
eff_lines=""
# a row's shape in full: whole layers, a frame per role, unless it says otherwise
pin="--set l1.shards=1 --set l2.shards=1 --set l3.shards=1 --set train.pairs=false"
run_ffs() { # label key cores_prefix [--set ...]; sets ffs_<key> to its samples/s
  local label=$1 key=$2 out=runs/perf-$2 prefix=$3; shift 3
  local shape=$pin
  [[ "$key" == shipped* ]] && shape="" # the planner's choice
  local cmd="$exe run configs/mnist-ff-hinton.yaml --epochs 1 --set data.test_limit=1000 --quiet --out $out --set layer.eval_average=0 $shape $*"
  rm -rf "$out"
  echo "bench: $prefix $cmd"
  $prefix $cmd > "$out.log" 2>&1
  local line
  line=$(python3 - "$out" "$peak" <<'PY2'
import json, sys
out, peak = sys.argv[1], float(sys.argv[2])
s = json.load(open(out + "/summary.json"))
dims = {"l1": (784, 1000), "l2": (1000, 1000), "l3": (1000, 1000)}
count = {}
for x in s["stages"]:
    base = x["name"].split(".")[0]
    if x["kind"] == "ff_layer": count[base] = count.get(base, 0) + 1
eff = []
for x in s["stages"]:
    if x["kind"] != "ff_layer": continue
    base = x["name"].split(".")[0]
    fin, units = dims[base]
    units /= count[base]
    # per training sample 3 forward + 2 gradient products, per evaluated
    # sample 11 forward rows (10 candidates + 1 neutral)
    flops = (60000 * 10 + 1000 * 22) * fin * units
    busy = x["cpu_s"] # the stage thread's CPU time inside its handlers
    gf = flops / busy / 1e9 if busy > 0 else 0
    eff.append("%s %.1f GFLOP/s = %.0f %%" % (x["name"], gf, 100 * gf / peak))
util = ", ".join("%s %.0f %%" % (x["name"], 100 * x["utilization"]) for x in s["stages"])
print("%d\t%s\t%s" % (round(s["train_samples_per_s"]), util, "; ".join(eff)))
PY2
)
  local sps util eff
  IFS=$'\t' read -r sps util eff <<< "$line"
  echo "bench: ffstream $label: $sps samples/s"
  ffs_rows+="| ffstream, $label | $sps | \`$prefix $cmd\` |"$'\n'
  eff_lines+="- $label: utilization (wall) $util; inside each ff_layer (FLOPs / its CPU seconds, vs the $peak GFLOP/s peak): $eff"$'\n'
  printf -v "ffs_$key" '%s' "$sps"
}
# the config as shipped against the fastest form picked by hand, alternately
for r in 1 2; do
  run_ffs "as shipped (the planner's choice), round $r" "shipped_$r" ""
  run_ffs "triple frames, l1 in 2 shards (fastest by hand), round $r" "hand_$r" "" \
    --set train.triples=true --set l1.shards=2
done
plan_line=$(grep -o 'planned for.*' runs/perf-shipped_1.log | head -1)
shipped=$(python3 -c "import statistics; print(round(statistics.median([$ffs_shipped_1, $ffs_shipped_2])))")
hand=$(python3 -c "import statistics; print(round(statistics.median([$ffs_hand_1, $ffs_hand_2])))")
run_ffs "5 processes on $cores cores" ffstream ""
run_ffs "l2 in 2 shards, 6 processes on $cores cores" sharded "" --set l2.shards=2
run_ffs "every layer in 2 shards, 8 processes on $cores cores" sharded_all "" \
  --set l1.shards=2 --set l2.shards=2 --set l3.shards=2
run_ffs "l2 in 2 shards, update: pair, 6 processes on $cores cores" sharded_pair "" \
  --set l2.shards=2 --set layer.update=pair
run_ffs "pair frames (train.pairs), 5 processes on $cores cores" pairs "" --set train.pairs=true
run_ffs "pair frames (train.pairs), l2 in 2 shards, 6 processes on $cores cores" sharded_pairs "" \
  --set train.pairs=true --set l2.shards=2
# frames through the sockets instead of shared memory (shm: false, the
# only path before shared-memory frames), and the same stages as threads of one process
run_ffs "pair frames, l2 in 2 shards, shm: false (every frame through the socket), 6 processes on $cores cores" \
  sharded_pairs_noshm "" --set train.pairs=true --set l2.shards=2 --set shm=false
run_ffs "pair frames, l2 in 2 shards, 6 threads of one process (--threads, inproc) on $cores cores" \
  sharded_pairs_threads "" --threads --set transport=inproc --set train.pairs=true --set l2.shards=2
# triple frames (train.triples: the neutral rows in the pair's frame, one
# forward sgemm of 300 rows); l1 in 2 shards balances 2 cores exactly
# (l1.0 + l2 = l1.1 + l3 = 1.39 M weights each), where l2 in 2 shards leaves
# 1.28 against 1.5
run_ffs "triple frames (train.triples), l1 in 2 shards, 6 processes on $cores cores" triples_l1 "" \
  --set train.triples=true --set l1.shards=2
run_ffs "triple frames, l1 in 2 shards, 6 threads of one process (--threads, inproc) on $cores cores" \
  triples_l1_threads "" --threads --set transport=inproc --set train.triples=true --set l1.shards=2
run_ffs "l2 in 2 shards, with the config's eval_average (0.995), 6 processes on $cores cores" \
  sharded_avg "" --set l2.shards=2 --set layer.eval_average=0.995
# BLIS (Debian's libblis4-serial, install_deps.sh --bench), put in front of
# OpenBLAS with LD_PRELOAD: its sgemm peak and ffstream's fastest shape on it
blis=/usr/lib/x86_64-linux-gnu/blis-serial/libblas.so.3
blis_peak=""
if [ -f "$blis" ]; then
  echo "bench: sgemm peak with BLIS (LD_PRELOAD=$blis)"
  blis_peak_out=$(LD_PRELOAD=$blis $peak_bin 1)
  echo "$blis_peak_out"
  blis_peak=$(echo "$blis_peak_out" | awk '/^peak/{print $2}')
  run_ffs "BLIS instead of OpenBLAS (LD_PRELOAD), l2 in 2 shards, 6 processes on $cores cores" \
    sharded_blis "env LD_PRELOAD=$blis" --set l2.shards=2
else
  echo "bench: no BLIS ($blis; apt-get install libblis4-serial); not measured"
fi
run_ffs "5 processes on 1 core" ffstream_1core "taskset -c 0"
run_ffs "l2 in 2 shards, 6 processes on 1 core" sharded_1core "taskset -c 0" --set l2.shards=2
# the config's own arithmetic (update: frame) is the headline; update: pair
# (one step per pos + neg pair, as the PyTorch peer does) is shown apart
ffs=$(( ffs_ffstream > ffs_sharded ? ffs_ffstream : ffs_sharded ))
ffs=$(( ffs > ffs_sharded_all ? ffs : ffs_sharded_all ))
pair=$(( ffs_sharded_pair > ffs_pairs ? ffs_sharded_pair : ffs_pairs ))
pair=$(( pair > ffs_sharded_pairs ? pair : ffs_sharded_pairs ))
pair=$(( pair > ffs_triples_l1 ? pair : ffs_triples_l1 ))
threads=$(( ffs_sharded_pairs_threads > ffs_triples_l1_threads ? ffs_sharded_pairs_threads : ffs_triples_l1_threads ))

torch_rows=""
best=0
best_cfg=""
torch_1core=0
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
  # the best single-core setting, for the scaling plot
  if [ "$threads" = 1 ] && [[ "$*" == *OPENBLAS_NUM_THREADS=1* ]] && [ "${sps:-0}" -gt "$torch_1core" ]; then
    torch_1core=$sps
  fi
  return 0
}
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  # glibc returns every large tensor's memory to the OS and maps it again the
  # next step (page faults in the kernel); keeping it mapped is PyTorch's
  # fast path here, so its best setting is searched with and without
  malloc_keep="MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456"
  for t in 1 2; do
    for b in 1 2; do
      run_torch "torch $t thread(s), OpenBLAS $b thread(s), ${coretype:-auto} kernels" $t \
        OPENBLAS_NUM_THREADS=$b OPENBLAS_CORETYPE=$coretype
      run_torch "torch $t thread(s), OpenBLAS $b thread(s), ${coretype:-auto} kernels, malloc keeps memory" $t \
        OPENBLAS_NUM_THREADS=$b OPENBLAS_CORETYPE=$coretype $malloc_keep
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
  printf '%s' "$ffs_rows"
  printf '%s' "$torch_rows"
  echo
  echo "- configs/mnist-ff-hinton.yaml as shipped ($plan_line): $shipped samples/s (median of two rounds: $ffs_shipped_1, $ffs_shipped_2) against $hand for the fastest form picked by hand (triple frames, l1 in 2 shards: $ffs_hand_1, $ffs_hand_2), alternating: $(python3 -c "print('%.1f %%' % (100 * $shipped / $hand))"); against the best PyTorch configuration ($best_cfg): $( [ "$best" -gt 0 ] && python3 -c "print('%.2fx' % ($shipped / $best))" || echo n/a)"
  echo "- ffstream (its faster form on $cores cores, $ffs samples/s) / limit: $(python3 -c "print('%.0f %%' % (100 * $ffs / $limit))")"
  [ "$best" -gt 0 ] && echo "- ffstream / best PyTorch configuration ($best_cfg): $(python3 -c "print('%.2fx' % ($ffs / $best))")"
  echo "- one optimizer step per positive + negative pair, as the PyTorch peer takes (update: pair, train.pairs or train.triples; configs/mnist-ff-hinton.yaml steps per frame), its fastest form as processes: $pair samples/s = $(python3 -c "print('%.0f %%' % (100 * $pair / $limit))") of the limit, $( [ "$best" -gt 0 ] && python3 -c "print('%.2fx' % ($pair / $best))" || echo n/a) the best PyTorch configuration"
  echo "- shared-memory frames (shm: true, the default on ipc) against every frame through the socket, pair frames with l2 in 2 shards: $ffs_sharded_pairs against $ffs_sharded_pairs_noshm samples/s ($(python3 -c "print('%+.1f %%' % (100 * ($ffs_sharded_pairs / max($ffs_sharded_pairs_noshm, 1) - 1)))"))"
  echo "- triple frames against pair frames (one frame and one forward sgemm per batch instead of two), as processes: $ffs_triples_l1 samples/s with l1 in 2 shards against $ffs_sharded_pairs for pair frames with l2 in 2 shards"
  echo "- the same stages as threads of one process (--threads, inproc: ZeroMQ passes a pointer), the faster of pair frames with l2 in 2 shards ($ffs_sharded_pairs_threads) and triple frames with l1 in 2 shards ($ffs_triples_l1_threads): $threads samples/s = $(python3 -c "print('%.0f %%' % (100 * $threads / $limit))") of the limit, $( [ "$best" -gt 0 ] && python3 -c "print('%.2fx' % ($threads / $best))" || echo n/a) the best PyTorch configuration (not the layer-per-process form the targets are about)"
  echo "- the config's eval_average (a moving average of the weights for evaluation): $ffs_sharded_avg samples/s against $ffs_sharded without it, l2 in 2 shards ($(python3 -c "print('%+.1f %%' % (100 * ($ffs_sharded_avg / max($ffs_sharded, 1) - 1)))"); run-to-run noise is about +-6 %)"
  echo "- scaling, 1 -> $cores cores: 5 processes $(python3 -c "print('%.2fx' % ($ffs_ffstream / max($ffs_ffstream_1core, 1)))"), sharded $(python3 -c "print('%.2fx' % ($ffs_sharded / max($ffs_sharded_1core, 1)))") (plot: docs/scaling.png)"
  [ -n "$blis_peak" ] && echo "- BLIS (libblis4-serial, LD_PRELOAD): sgemm peak $blis_peak GFLOP/s against OpenBLAS's $peak; ffstream with l2 in 2 shards $ffs_sharded_blis samples/s against $ffs_sharded with OpenBLAS"
  printf '%s' "$eff_lines"
  echo
  echo "sgemm shapes (1 thread):"
  echo
  echo '```'
  echo "$peak_out"
  echo '```'
  if [ -n "$blis_peak" ]; then
    echo
    echo "with BLIS:"
    echo
    echo '```'
    echo "$blis_peak_out"
    echo '```'
  fi
} >> docs/PERFORMANCE.md
# the scaling plot: throughput against cores, with the limit line
{
  echo "cores,limit,ffstream,ffstream_sharded,pytorch"
  echo "1,$(python3 -c "print(round($peak * 1e9 / $flops))"),$ffs_ffstream_1core,$ffs_sharded_1core,$torch_1core"
  echo "$cores,$limit,$ffs_ffstream,$ffs_sharded,$best"
} > docs/scaling.csv
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  /usr/bin/python3 bench/plot_scaling.py docs/scaling.csv docs/scaling.png
else
  echo "bench: no matplotlib (apt-get install python3-matplotlib); docs/scaling.png not drawn"
fi
echo "bench: appended to docs/PERFORMANCE.md"
