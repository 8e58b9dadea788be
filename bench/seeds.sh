#!/usr/bin/env bash
# bench/seeds.sh: does the planned form of a config learn what its plain
# form learns? Runs CONFIG once per seed in two forms, all at the same time,
# each run on cores of its own (taskset):
#   plain   = every layer whole and a frame per role (--set train.pairs=false
#             and shards=1 for every ff_layer): the form before the planner
#   planned = the config as shipped: the planner's shards and frame form
# and prints a table of final test errors and training speeds, with the
# spread over seeds of each form.
#   bash bench/seeds.sh CONFIG SEED [SEED ...]
# CORES_PER_RUN (default: this machine's cores / runs, at least 1) cores per
# run; EXTRA: more --set options for every run (e.g. "--set
# train.eval_every=60": evaluate only after the last epoch, which changes
# nothing learned). FFS_FFSTREAM: the binary (default build/ffstream).
# Outputs under runs/seeds-<config>-<form>-s<seed>/.
set -uo pipefail
cd "$(dirname "$0")/.."
exe=${FFS_FFSTREAM:-build/ffstream}
[ $# -ge 2 ] || { echo "usage: bash bench/seeds.sh CONFIG SEED [SEED ...]" >&2; exit 2; }
cfg=$1
shift
seeds=("$@")
for s in "${seeds[@]}"; do
  [[ "$s" =~ ^[0-9]+$ ]] || { echo "bench: a seed is a whole number, not '$s'" >&2; exit 2; }
done
[ -x "$exe" ] || { echo "bench: $exe missing (make build)" >&2; exit 2; }
layers=$("$exe" check "$cfg" | awk '$2 == "ff_layer" {sub(/\.[0-9]+$/, "", $1); print $1}' | sort -u)
[ -n "$layers" ] || { echo "bench: $cfg has no ff_layer (or does not load)" >&2; exit 2; }
plain=(--set train.pairs=false)
for l in $layers; do plain+=(--set "$l.shards=1"); done
runs=$(( 2 * ${#seeds[@]} ))
have=$(nproc)
per=${CORES_PER_RUN:-$(( have / runs > 0 ? have / runs : 1 ))}
name=$(basename "$cfg" .yaml)
mkdir -p runs
read -r -a extra <<< "${EXTRA:-}"

k=0
pids=()
for s in "${seeds[@]}"; do
  for form in plain planned; do
    first=$(( (k * per) % have )) last=$(( (k * per) % have + per - 1 ))
    [ "$last" -ge "$have" ] && last=$(( have - 1 ))
    out=runs/seeds-$name-$form-s$s
    rm -rf "$out"
    sets=(--set "seed=$s" "${extra[@]}")
    [ "$form" = plain ] && sets+=("${plain[@]}")
    echo "bench: taskset -c $first-$last $exe run $cfg --quiet --out $out ${sets[*]}"
    taskset -c "$first-$last" "$exe" run "$cfg" --quiet --out "$out" "${sets[@]}" > "$out.log" 2>&1 &
    pids+=($!)
    k=$(( k + 1 ))
  done
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done

python3 - "$name" "${seeds[*]}" <<'PY'
import json, statistics, sys
name, seeds = sys.argv[1], sys.argv[2].split()
print("| seed | form | test error (energy) | softmax | train samples/s | plan |")
print("|---|---|---|---|---|---|")
err = {"plain": [], "planned": []}
for s in seeds:
    for form in ("plain", "planned"):
        path = "runs/seeds-%s-%s-s%s/summary.json" % (name, form, s)
        try:
            j = json.load(open(path))
        except (OSError, ValueError) as e:
            print("| %s | %s | no summary (%s) | | | |" % (s, form, e))
            continue
        e, m = j["test_error_energy"], j["test_error_softmax"]
        err[form].append(j["test_error"])
        plan = j.get("plan", {}).get("line", "")
        print("| %s | %s | %.2f %% | %.2f %% | %.0f | %s |" % (s, form, 100 * e, 100 * m,
              j["train_samples_per_s"], plan))
for form, v in err.items():
    if v:
        print("%s: mean %.3f %%, min %.2f %%, max %.2f %% over %d seeds" % (
            form, 100 * statistics.mean(v), 100 * min(v), 100 * max(v), len(v)))
PY
exit $fail
