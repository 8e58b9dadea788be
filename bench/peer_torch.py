#!/usr/bin/python3
"""peer_torch: our own PyTorch implementation of the recipe in
configs/mnist-ff-hinton.yaml (784-1000x3, batch 100, RMS normalization, sum-
of-squares goodness with theta = units, logistic loss, peer normalization,
smoothed-gradient descent with weight decay, hard negatives drawn from a
softmax readout on a neutral-label pass), used only to measure PyTorch's
training throughput side by side with ffstream (bench/throughput.sh).

Per training sample it does the same arithmetic as an ffstream pipeline: a
neutral pass, a positive and a negative pass through every layer, and two
weight-gradient products per layer (27.8 MFLOP for 784-1000x3; here the
positive and negative frames share one matmul each way, the same FLOPs).

  OPENBLAS_NUM_THREADS=B /usr/bin/python3 bench/peer_torch.py --threads T
prints one line: "peer_torch threads=T blas=B samples/s=..."
"""
import argparse
import os
import time

import torch

from idx import read_idx


def rms_norm(x):
    return x / (x.pow(2).mean(1, keepdim=True).sqrt() + 1e-8)


def overlay(x, labels):
    """Label pixels: one-hot of labels, or 0.1 everywhere when labels is None."""
    x = x.clone()
    if labels is None:
        x[:, :10] = 0.1
    else:
        x[:, :10] = 0.0
        x[torch.arange(x.shape[0]), labels] = 1.0
    return x


class Layer:
    """One FF layer. Written for speed as a PyTorch user would: the positive
    and negative frames go through one matmul of 2 x batch rows, the weight
    gradient of both is one matmul added straight into the smoothed gradient
    (addmm_ with beta = momentum), and every update is in place."""

    def __init__(self, n_in, units, gen):
        self.w = torch.randn(units, n_in, generator=gen) / n_in ** 0.5
        self.b = torch.zeros(units)
        self.peer = torch.full((units,), 0.5)
        self.mw = torch.zeros_like(self.w)
        self.mb = torch.zeros_like(self.b)
        self.theta = float(units)

    def forward(self, x):
        xn = rms_norm(x)
        y = torch.addmm(self.b, xn, self.w.t()).clamp_(min=0.0)
        return xn, y

    def learn(self, xn, y, rows, lr=0.01, mom=0.9, wd=0.001, lam=0.03):
        """xn, y: the positive frame's rows, then the negative frame's (rows
        each). One step on the sum of both frames' gradients, each frame's
        loss a mean over its rows; peer normalization in both, as ffstream."""
        self.peer.mul_(0.9).add_(y[:rows].mean(0), alpha=0.1)
        g = y.pow(2).sum(1)
        dldg = torch.sigmoid(g - self.theta)  # temp 1
        dldg[:rows] -= 1.0
        dz = y.mul_((2.0 / rows) * dldg[:, None])  # y is not needed after this
        dz.sub_(lam * (self.peer.mean() - self.peer) / rows)
        self.mw.addmm_(dz.t(), xn, beta=mom, alpha=1 - mom)
        self.mb.mul_(mom).add_(dz.sum(0), alpha=1 - mom)
        self.w.mul_(1.0 - lr * wd).sub_(self.mw, alpha=lr)
        self.b.sub_(self.mb, alpha=lr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--units", type=int, default=1000)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--batches", type=int, default=150, help="timed training batches")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    images = torch.from_numpy(read_idx(os.path.join(a.data, "train-images-idx3-ubyte")))
    labels = torch.from_numpy(read_idx(os.path.join(a.data, "train-labels-idx1-ubyte"))).long()
    x_all = images.reshape(images.shape[0], -1).float() / 255.0
    gen = torch.Generator().manual_seed(1)
    dims = [x_all.shape[1]] + [a.units] * a.layers
    layers = [Layer(dims[i], dims[i + 1], gen) for i in range(a.layers)]
    ro_in = a.units * (a.layers - 1)
    w_ro = torch.zeros(10, ro_in)

    def step(idx):
        nonlocal w_ro
        x, y = x_all[idx], labels[idx]
        # neutral pass: the softmax readout's prediction picks hard negatives
        h, acts = overlay(x, None), []
        for i, l in enumerate(layers):
            _, out = l.forward(h)
            h = rms_norm(out)
            if i > 0:
                acts.append(h)
        feats = torch.cat(acts, 1)
        probs = torch.softmax(feats @ w_ro.t(), 1)
        d = probs.clone()
        d[torch.arange(len(y)), y] -= 1.0
        w_ro -= 0.01 * (d.t() @ feats) / len(y)
        wrong = probs.clone()
        wrong[torch.arange(len(y)), y] = 0.0
        wrong += 1e-6
        wrong[torch.arange(len(y)), y] = 0.0
        neg_labels = torch.multinomial(wrong, 1, generator=gen).squeeze(1)
        h = torch.cat([overlay(x, y), overlay(x, neg_labels)])  # positive | negative
        rows = len(y)
        for l in layers:  # each layer learns from its own input: no backprop
            xn, out = l.forward(h)
            h = rms_norm(out)  # what goes on, taken before learn() reuses out
            l.learn(xn, out, rows)

    order = torch.randperm(x_all.shape[0], generator=gen)
    for b in range(a.warmup):
        step(order[b * a.batch:(b + 1) * a.batch])
    t0 = time.perf_counter()
    for b in range(a.warmup, a.warmup + a.batches):
        step(order[b * a.batch:(b + 1) * a.batch])
    dt = time.perf_counter() - t0
    print(f"peer_torch threads={torch.get_num_threads()} "
          f"blas={os.environ.get('OPENBLAS_NUM_THREADS', 'default')} "
          f"coretype={os.environ.get('OPENBLAS_CORETYPE', 'auto')} "
          f"samples/s={a.batches * a.batch / dt:.0f}")


if __name__ == "__main__":
    main()
