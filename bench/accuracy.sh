#!/usr/bin/env bash
# bench/accuracy.sh: trains each given topology through the pipeline of
# processes and appends its figures to docs/RESULTS.md (test error overall,
# energy, softmax and per layer; the curve at epochs 1, 6, 11, 21; wall time;
# throughput; machine; exact command). Part of `make bench`, never `make test`.
#   bash bench/accuracy.sh [CONFIG ...] [-- extra ffstream flags]
set -euo pipefail
cd "$(dirname "$0")/.."
configs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do configs+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
extra=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(configs/mnist-ff.yaml)
exe=build/ffstream
[ -x "$exe" ] || { echo "bench: build first (make build)" >&2; exit 2; }
out_md=docs/RESULTS.md
[ -f "$out_md" ] || printf '# Results\n\nFigures appended by bench/accuracy.sh; newest last.\n' > "$out_md"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
machine="$(nproc) cores, ${cpu:-unknown CPU}, $(free -g | awk '/^Mem:/{print $2}') GiB, $(. /etc/os-release && echo "$PRETTY_NAME")"
for cfg in "${configs[@]}"; do
  name=$(basename "$cfg" .yaml)
  out=runs/bench-$name
  rm -rf "$out"
  cmd="$exe run $cfg --quiet --out $out ${extra[*]:-}"
  echo "bench: $cmd"
  start=$(date +%s)
  $cmd
  python3 - "$out" "$cmd" "$machine" "$(date -u +%Y-%m-%d)" "$(( $(date +%s) - start ))" >> "$out_md" <<'PY'
import csv, json, sys
out, cmd, machine, day, wall = sys.argv[1:6]
s = json.load(open(out + "/summary.json"))
rows = list(csv.DictReader(open(out + "/metrics.csv")))
pct = lambda v: "n/a" if v is None or float(v) < 0 else "%.2f %%" % (100 * float(v))
curve = ", ".join("epoch %s: %s" % (r["epoch"], pct(r["test_error"]))
                  for r in rows if int(r["epoch"]) in (1, 6, 11, 21))
layers = ", ".join("%s %s / %s" % (k, pct(v["energy"]), pct(v["softmax"]))
                   for k, v in s["test_error_per_layer"].items())
print(f"""
## {s['name']} ({day})
- command: `{cmd}`
- machine: {machine}
- test error: **{pct(s['test_error'])}** (energy {pct(s['test_error_energy'])}, softmax {pct(s['test_error_softmax'])}) after {s['epochs_completed']} epochs
- per layer (energy / softmax): {layers}
- curve: {curve or 'n/a'}
- train throughput {s['train_samples_per_s']:.0f} samples/s; run wall time {s['wall_s']:.0f} s (command {wall} s)
- stages: {", ".join("%s core %d util %.0f %%" % (x['name'], x['core'], 100 * x['utilization']) for x in s['stages'])}""")
PY
done
echo "bench: appended to $out_md"
