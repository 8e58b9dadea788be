#!/usr/bin/env bash
# bench/bundle.sh: what ffstream needs on a machine that lacks this build's
# libraries and data (the 16-core device: Ubuntu, with OpenBLAS and hwloc but
# no libzmq, msgpack or libyaml, and no registry to install them from):
#   bash bench/bundle.sh [DIR]      default DIR: bundle (git-ignored)
# DIR gets bin/ (ffstream, sgemm_peak), lib/ (every shared library ldd lists
# except glibc's own, the C++/gcc runtimes and OpenBLAS, which the target
# has) and data/mnist (gzipped IDX, which the loader reads as they are). On
# the target, from the repository root:
#   LD_LIBRARY_PATH=$PWD/DIR/lib FFS_FFSTREAM=DIR/bin/ffstream \
#     bash bench/scaling.sh 1 2 4 8 16
# with data/ pointing at DIR/data (ln -s DIR/data data).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-bundle}
for f in build/ffstream build/sgemm_peak; do
  [ -x "$f" ] || { echo "bundle: $f missing (make build)" >&2; exit 2; }
done
[ -f data/mnist/train-images-idx3-ubyte ] || [ -f data/mnist/train-images-idx3-ubyte.gz ] ||
  { echo "bundle: no MNIST under data/mnist (make data)" >&2; exit 2; }
rm -rf "$dir"
mkdir -p "$dir/bin" "$dir/lib" "$dir/data/mnist"
cp build/ffstream build/sgemm_peak "$dir/bin/"
# glibc, the compiler runtimes and the BLAS are the target's own
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libpthread|libdl|librt|libresolv|libgcc_s|libstdc\+\+|libopenblas|libgfortran|libquadmath)'
ldd build/ffstream build/sgemm_peak | awk '/=> \//{print $1, $3}' | sort -u |
  while read -r name path; do
    [[ "$name" =~ $skip ]] && continue
    cp -L "$path" "$dir/lib/$name"
  done
for f in data/mnist/*-ubyte data/mnist/*-ubyte.gz; do
  [ -f "$f" ] || continue
  case "$f" in
    *.gz) cp "$f" "$dir/data/mnist/" ;;
    *) gzip -c "$f" > "$dir/data/mnist/$(basename "$f").gz" ;;
  esac
done
du -sh "$dir" | awk '{print "bundle: " $2 " is " $1}'
ls "$dir/lib"
