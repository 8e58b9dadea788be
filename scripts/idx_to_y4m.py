#!/usr/bin/env python3
"""idx_to_y4m.py: writes an IDX image set (MNIST-style, .gz or not) as a
YUV4MPEG2 video (mono, one image per frame) and its labels as a side file,
one label per line by frame index: what `make stream-demo` plays through
ffmpeg into a stream-mode source (feed: y4m, labels:).

    python3 scripts/idx_to_y4m.py data/mnist/train VIDEO.y4m LABELS.txt [--fps N] [--limit N]

Standard library only.
"""
import argparse
import gzip
import os
import struct
import sys


def read_idx(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rb") as f:
                data = f.read()
            break
    else:
        sys.exit(f"idx_to_y4m: {path}: not found (nor {path}.gz); run `make data`")
    magic, = struct.unpack(">I", data[:4])
    if magic >> 8 != 0x08:
        sys.exit(f"idx_to_y4m: {path}: not an IDX file of unsigned bytes")
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix", help="e.g. data/mnist/train (reads PREFIX-images-idx3-ubyte)")
    ap.add_argument("video")
    ap.add_argument("labels")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    (n, h, w), pixels = read_idx(a.prefix + "-images-idx3-ubyte")
    (nl,), labels = read_idx(a.prefix + "-labels-idx1-ubyte")
    if nl != n:
        sys.exit(f"idx_to_y4m: {n} images but {nl} labels")
    if a.limit:
        n = min(n, a.limit)
    with open(a.video, "wb") as v:
        v.write(f"YUV4MPEG2 W{w} H{h} F{a.fps}:1 Ip A1:1 Cmono\n".encode())
        for i in range(n):
            v.write(b"FRAME\n")
            v.write(pixels[i * h * w:(i + 1) * h * w])
    with open(a.labels, "w") as f:
        f.write("".join(f"{labels[i]}\n" for i in range(n)))
    print(f"idx_to_y4m: {n} frames of {w}x{h} at {a.fps}/s -> {a.video}, labels -> {a.labels}")


if __name__ == "__main__":
    main()
