#!/usr/bin/env bash
# bench/run_all.sh: every benchmark `make bench` runs (each also runs alone).
set -euo pipefail
cd "$(dirname "$0")/.."
bash bench/accuracy.sh configs/mnist-ff.yaml configs/fashion-ff.yaml
bash bench/throughput.sh
