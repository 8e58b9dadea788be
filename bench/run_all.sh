#!/usr/bin/env bash
# bench/run_all.sh: every benchmark `make bench` runs (each also runs alone).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh --bench # PyTorch for the peer, matplotlib for the plot
bash bench/loops.sh # mnist-ff and fashion-ff, beside their FFCL and recurrent forms
bash bench/throughput.sh
bash bench/streaming.sh
bash bench/scaling.sh # 784-2000x4 over 1 2 4 8 16 cores, those the machine has
