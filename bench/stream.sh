#!/usr/bin/env bash
# bench/stream.sh: learning a live stream, in one run on this machine:
#   1. the MNIST training set played once as a video (scripts/idx_to_y4m.py,
#      ffmpeg -> configs/stream-mnist-video.yaml) at batch 1: prequential
#      accuracy over the whole stream and over its last 10 000 frames, the
#      test error after that one pass, training samples/s;
#   2. the same stream learned by online backprop (bench/peer_online.py,
#      784-500-500-10, SGD with momentum, batch 1) on the same cores;
#   3. the highest frame rate sustained with learning and nothing dropped:
#      ffmpeg -re plays 6 000 frames at each rate, overflow drop_oldest, a
#      queue of STREAM_QUEUE frames (512: the first second, while every stage
#      warms up, is slower than the rest);
#   4. capture-to-prediction latency p50 / p99 at 30 frames/s and at that rate.
#   bash bench/stream.sh        (STREAM_RATES="1000 2000 ...": the rates tried)
queue=${STREAM_QUEUE:-512}
set -euo pipefail
cd "$(dirname "$0")/.."
exe=build/ffstream
[ -x "$exe" ] || { echo "bench: build first (make build)" >&2; exit 2; }
dir=runs/bench-stream
mkdir -p "$dir"
cfg=configs/stream-mnist-video.yaml
py=/usr/bin/python3
malloc_keep="MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456"

# the figures of a run's summary.json: samples/s, prequential (all, last 10 000),
# test error, dropped, latency p50 / p99
figures() {
  $py - "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
st = s["stream"]
w = st["windows"]
last = [a for n, a in w if n > st["scored"] - 10000]
tail = sum(last) / len(last) if last else float("nan")
pre = st["prequential_accuracy"] or 0
te = s["test_error"]
print(f'{s["train_samples_per_s"]:.0f} {100*pre:.2f} {100*tail:.2f} '
      f'{"-" if te is None else f"{100*te:.2f}"} {st["dropped"]} '
      f'{st["latency_p50_us"] or 0:.0f} {st["latency_p99_us"] or 0:.0f}')
PY
}

# 1. one pass over the video
mkdir -p runs/stream-demo
$py scripts/idx_to_y4m.py data/mnist/train runs/stream-demo/digits.y4m runs/stream-demo/digits.labels
cmd1="$exe run $cfg --quiet --out $dir/pass"
echo "bench: $cmd1"
$cmd1 > "$dir/pass.log" 2>&1
read -r sps pre tail te _ _ _ <<< "$(figures $dir/pass)"
echo "ffstream: $sps samples/s, prequential $pre % (last 10 000: $tail %), test error $te %"

# 2. online backprop on the same stream (one thread, then two)
peer=""
for th in 1 2; do
  cmd2="$py bench/peer_online.py --threads $th --json $dir/peer$th.json"
  echo "bench: $malloc_keep $cmd2"
  env $malloc_keep $cmd2 > "$dir/peer$th.log" 2>&1 || { echo "bench: peer failed: $dir/peer$th.log"; continue; }
  peer+=$($py - "$dir/peer$th.json" "$th" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
print(f'| online backprop 784-500-500-10, {sys.argv[2]} thread(s), lr {p["lr"]}, momentum {p["momentum"]} '
      f'| {100*p["prequential_accuracy"]:.2f} % | {100*p["prequential_accuracy_last"]:.2f} % '
      f'| {100*p["test_error"]:.2f} % | {p["samples_per_s"]:.0f} |')
PY
)$'\n'
done

# VIDEO played at its rate by ffmpeg -re into the video config, drop_oldest;
# the command goes to $cmd_played (for the notes) and the figures to $played
play() { # label video labels queue-sets...
  local out="$dir/$1" video=$2 labels=$3
  shift 3
  cmd_played="$exe run $cfg --quiet --out $out --set train.final_test=false"
  cmd_played+=" --set src.command=\"ffmpeg -v error -re -i $video -f yuv4mpegpipe -pix_fmt gray -\""
  cmd_played+=" --set src.labels=$labels --set src.overflow=drop_oldest $*"
  echo "bench: $cmd_played"
  eval "$cmd_played" > "$out.log" 2>&1
  played=$(figures "$out")
}

# 3. the highest rate sustained without a drop (6 000 frames per rate)
best=0; best_lat=""
rates_rows=""
for rate in ${STREAM_RATES:-1000 2000 3000 4000 4500 5000}; do
  $py scripts/idx_to_y4m.py data/mnist/train "$dir/r$rate.y4m" "$dir/r$rate.labels" --limit 6000 --fps "$rate" > /dev/null
  play "rate$rate" "$dir/r$rate.y4m" "$dir/r$rate.labels" --set src.queue=$queue
  read -r r_sps r_pre r_tail r_te r_drop r_p50 r_p99 <<< "$played"
  rates_rows+="| $rate | $r_sps | $r_drop | $r_p50 | $r_p99 |"$'\n'
  echo "rate $rate/s: dropped $r_drop, latency p50 $r_p50 us, p99 $r_p99 us"
  if [ "$r_drop" = "0" ]; then best=$rate; best_lat="$r_p50 / $r_p99"; fi
done

# 4. 30 frames/s: 900 frames, the default queue
$py scripts/idx_to_y4m.py data/mnist/train "$dir/r30.y4m" "$dir/r30.labels" --limit 900 --fps 30 > /dev/null
play rate30 "$dir/r30.y4m" "$dir/r30.labels"
read -r _ _ _ _ d30 p50_30 p99_30 <<< "$played"

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
cat <<EOF

## bench/stream.sh, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)
Machine: $(nproc) cores, $cpu.

| learner (one pass over the 60 000 MNIST training digits, batch 1) | prequential accuracy | last 10 000 | test error after | samples/s |
|---|---|---|---|---|
| ffstream, $cfg (video through ffmpeg) | $pre % | $tail % | $te % | $sps |
${peer}
Highest rate with learning and nothing dropped: **$best frames/s** (latency p50 / p99: $best_lat us).

| frames/s (ffmpeg -re, 6 000 frames, queue $queue) | learned samples/s | dropped | latency p50 (us) | p99 (us) |
|---|---|---|---|---|
${rates_rows}| 30 (900 frames) | 30 | $d30 | $p50_30 | $p99_30 |

Commands: \`$cmd1\`; \`$malloc_keep $py bench/peer_online.py --threads N\`; the rates:
\`$exe run $cfg --set train.final_test=false --set src.command="ffmpeg -v error -re -i VIDEO -f yuv4mpegpipe -pix_fmt gray -" --set src.labels=LABELS --set src.overflow=drop_oldest --set src.queue=$queue\`
with VIDEO written by \`scripts/idx_to_y4m.py ... --limit 6000 --fps RATE\`.
EOF
