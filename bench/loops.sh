#!/usr/bin/env bash
# bench/loops.sh: the cortical-loop forms against plain FF with the same
# layer sizes and recipe, in one run. Appends to docs/RESULTS.md:
#   - MNIST:   mnist-ff (plain) and mnist-ffcl (label weights), 14 epochs;
#   - Fashion: fashion-ff and fashion-ffcl, 10 epochs;
#   - mnist-recurrent and fashion-recurrent (8 ticks, lockstep), the same
#     epochs (each costs about 8 plain epochs: 30 + 20 minutes on 2 cores);
#   - FFCL vs FF energy inference time and FLOPs (build/ffcl_infer).
# Part of `make bench`, never of `make test`.
#   bash bench/loops.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/ffcl_infer ] || { echo "bench: build first (make build)" >&2; exit 2; }
bash bench/accuracy.sh configs/mnist-ff.yaml configs/mnist-ffcl.yaml \
  configs/fashion-ff.yaml configs/fashion-ffcl.yaml
bash bench/accuracy.sh configs/mnist-recurrent.yaml configs/fashion-recurrent.yaml
{
  echo
  echo "## FFCL vs FF energy inference ($(date -u +%Y-%m-%d))"
  echo "- command: \`OPENBLAS_NUM_THREADS=1 build/ffcl_infer 784 500 500 500\`"
  echo "- machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo '```'
  OPENBLAS_NUM_THREADS=1 build/ffcl_infer 784 500 500 500
  echo '```'
} >> docs/RESULTS.md
echo "bench: appended to docs/RESULTS.md"
