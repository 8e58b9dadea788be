#!/usr/bin/env bash
# fuzz/run.sh: builds the libFuzzer harnesses with ASan+UBSan (clang) and
# runs them from the seed corpora in fuzz/corpus.
#   bash fuzz/run.sh FRAME_RUNS TOPO_RUNS      (make fuzz: 10000000 100000)
# (the control-message decoder gets FRAME_RUNS too)
# Prints executions and crashes per target; exits non-zero on any crash.
# A crashing input lands in fuzz-out/ (git-ignored): copy it into
# fuzz/regressions/<target>/ so that every later run replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
frame_runs=${1:-10000000}
topo_runs=${2:-100000}
out=fuzz-out
mkdir -p "$out/bin" "$out/corpus-frame" "$out/corpus-topo" "$out/corpus-ctl"
CC=${FUZZ_CC:-clang}
flags=(-std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -Icommon -Iproto)
"$CC" "${flags[@]}" fuzz/fuzz_frame.c proto/ffs_frame.c common/ffs_log.c \
  $(pkg-config --cflags --libs msgpack) -o "$out/bin/fuzz_frame"
# the loader reads the kind table (stages/ffs_kinds.c), whose records carry
# their kinds' ops: the topology fuzzer links the whole library
lib=(common/*.c proto/*.c stages/*.c stages/*/*.c launch/ffs_*.c)
"$CC" "${flags[@]}" -Istages -Istages/ff_layer -Istages/source -Ilaunch fuzz/fuzz_topo.c \
  "${lib[@]}" $(pkg-config --cflags --libs yaml-0.1 libzmq msgpack hwloc openblas zlib libpng) -lm \
  -lpthread -o "$out/bin/fuzz_topo"
"$CC" "${flags[@]}" fuzz/fuzz_ctl.c common/ffs_ctl.c \
  $(pkg-config --cflags --libs msgpack) -o "$out/bin/fuzz_ctl"

status=0
run() { # target runs seeds...
  local target=$1 runs=$2; shift 2
  local log="$out/$target.log"
  local dirs=("$out/corpus-${target#fuzz_}" "$@")
  [ -d "fuzz/regressions/${target#fuzz_}" ] && dirs+=("fuzz/regressions/${target#fuzz_}")
  set +e
  "$out/bin/$target" -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/$target-" "${dirs[@]}" > "$log" 2>&1
  local rc=$?
  set -e
  local execs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  local crashes=0
  [ $rc -eq 0 ] || crashes=1
  echo "fuzz: $target: ${execs:-0} executions, crashes = $crashes (log $log)"
  [ $rc -eq 0 ] || { tail -30 "$log"; status=1; }
}
run fuzz_frame "$frame_runs" fuzz/corpus/frame
run fuzz_topo "$topo_runs" fuzz/corpus/topo configs
run fuzz_ctl "$frame_runs" fuzz/corpus/ctl
exit $status
