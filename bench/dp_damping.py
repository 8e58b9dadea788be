#!/usr/bin/python3
"""bench/dp_damping.py RUN_DIR [--rows N]: what the dampened dyad does to a
dp_layer chain's error signals, from a finished run's checkpoints.

For the first N training images (default 100) it runs the chain's forward
pass, the top's softmax cross-entropy nudge and the one top-down sweep twice,
with undamped dyads and with dampened ones (L = max(0, (sigma^2 - 1) / 2) of
the weights above, sigma their largest singular value, as the dp_layer stage
computes it), in float64, and prints per layer: sigma of its weights, the L
it sends below, the cosine between the two sweeps' dz and the ratio of their
norms, and the median and 90th percentile of |g| + weight decay over its
weights (the gradient Adam sees) for the dampened sweep.
The layers are read from RUN_DIR/ckpt/<stage>.safetensors in the order of
summary.json's stages; alpha, beta and weight decay come from the command
line (the shipped configs: 0.5, 1, 0.001).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idx import read_idx  # noqa: E402


def load(path):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])

    def get(k):
        t = head[k]
        s, e = t["data_offsets"]
        if t["dtype"] != "F32":
            sys.exit(f"{path}: tensor {k} is {t['dtype']}, expected F32")
        return np.frombuffer(b[8 + n + s:8 + n + e], dtype="<f4").reshape(t["shape"]) \
            .astype(np.float64)
    return get("w"), get("b")


def sweep(layers, x, y, damped, alpha, beta):
    xs, pre = [x], []
    for k, (w, b) in enumerate(layers):
        a = xs[-1] @ w.T + b
        pre.append(a)
        xs.append(a if k == len(layers) - 1 else np.maximum(a, 0))
    a = pre[-1]
    p = np.exp(a - a.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = p.copy()
    dz[np.arange(len(y)), y] -= 1
    dz /= len(y)
    out = [None] * len(layers)
    out[-1] = dz
    for k in range(len(layers) - 2, -1, -1):
        w_above = layers[k + 1][0]
        fb = (-beta * out[k + 1]) @ w_above
        sig = np.linalg.svd(w_above, compute_uv=False)[0]
        L = max(0.0, (sig * sig - 1) / 2) if damped else 0.0
        a = pre[k]
        s0 = np.maximum(a, 0)
        sp = np.maximum((a + (1 - alpha) * fb + L * s0) / (1 + L), 0)
        sm = np.maximum((a - alpha * fb + L * s0) / (1 + L), 0)
        out[k] = -(sp - sm) / beta
    return xs, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--weight-decay", type=float, default=0.001)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data",
                                                   "mnist"))
    a = ap.parse_args()
    summary = json.load(open(os.path.join(a.run, "summary.json")))
    names = [s["name"] for s in summary["stages"] if s.get("kind") == "dp_layer"]
    if not names:
        sys.exit(f"{a.run}/summary.json: no dp_layer stages")
    layers = [load(os.path.join(a.run, "ckpt", n + ".safetensors")) for n in names]
    x = read_idx(os.path.join(a.data, "train-images-idx3-ubyte"))[:a.rows]
    x = x.reshape(a.rows, -1).astype(np.float64) / 255.0
    y = read_idx(os.path.join(a.data, "train-labels-idx1-ubyte"))[:a.rows].astype(np.int64)
    _, und = sweep(layers, x, y, False, a.alpha, a.beta)
    xs, dam = sweep(layers, x, y, True, a.alpha, a.beta)
    print("| layer | sigma of W | L it sends below | cos(dz damped, undamped) | "
          "|dz undamped| / |dz damped| | median, p90 of |dW + wd W| (damped) |")
    print("|---|---|---|---|---|---|")
    for k, n in enumerate(names):
        w = layers[k][0]
        sig = np.linalg.svd(w, compute_uv=False)[0]
        L = max(0.0, (sig * sig - 1) / 2) if k > 0 else float("nan")
        u, d = und[k], dam[k]
        cos = float((u * d).sum() / (np.linalg.norm(u) * np.linalg.norm(d) + 1e-300))
        ratio = float(np.linalg.norm(u) / (np.linalg.norm(d) + 1e-300))
        g = np.abs(d.T @ xs[k] + a.weight_decay * w)
        print(f"| {n} | {sig:.2f} | {'-' if k == 0 else f'{L:.2f}'} | {cos:.4f} | "
              f"{ratio:.1f} | {np.median(g):.2e}, {np.percentile(g, 90):.2e} |")


if __name__ == "__main__":
    main()
