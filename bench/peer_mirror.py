#!/usr/bin/python3
"""peer_mirror: our own PyTorch port of two mirrored models that teach each
other (Gananath R 2024, "Improved Forward-Forward Contrastive Learning";
ALGORITHMS.md section 3), with the objectives of ffstream's mirror_layer
(stages/mirror_layer/mirror_layer.h), as an accuracy reference beside the
pipeline and to measure what each part of the loss contributes.

Two networks, model a and model b, --sizes (default 784,64,64,10), each from
its own random start: W ~ randn(out, in) / sqrt(in), b = 0 (a torch.Generator
seeded with --seed, model a's layers drawn first). Input: pixels / 255.
Hidden layers h = relu(W x + b) on the layer below's activity, detached:
every layer learns only from its own loss, and the twin's activity (the
other model's layer at the same depth) is a fixed target.
- --objective cosine (the paper's): mean of 1 - cos(u_i, v_i).
- --objective infonce: -log softmax_j(cos(u_i, v_j) / tau) at j = i.
- --objective supcon: the mean over the batch's same-label j of the same.
  (u: this layer's activity, v: the twin's, i, j: samples of the batch.)
- --twin W scales that term (0: no twin term at all);
- --head W adds W times the cross-entropy of a linear softmax head of the
  layer's own on its activity (the head steps with it; mirror_layer's head).
Top layers: p = softmax(W x + b), mean binary cross-entropy with the one-hot
label. Adam (0.9, 0.999, 1e-8) at --lr; --cooldown multiplies the rate in
epoch e (0-based) by min(1, 2 * (epochs - e) / epochs). One torch.Generator
seeded with --seed shuffles each epoch.

Prints per epoch "epoch E test_error=... a=... b=..." (the two models'
averaged probabilities, then each alone) and at the end one line
  "peer_mirror objective=O twin=W head=H sizes=... test_error=X a=... b=...
   pair_cosine=c1,c2,..."
with each hidden layer's mean cosine between the activities of different
test samples (the first 1 000; near 1: every sample gives the same direction,
the layer collapsed), model a's layers then model b's. Typical:
  /usr/bin/python3 bench/peer_mirror.py --objective supcon --head 1 --cooldown --lr 3e-4
"""
import argparse
import os

import numpy as np
import torch
import torch.nn.functional as F

from idx import read_idx


def load(data_dir, split):
    x = read_idx(os.path.join(data_dir, split + "-images-idx3-ubyte"))
    y = read_idx(os.path.join(data_dir, split + "-labels-idx1-ubyte"))
    x = torch.tensor(x.reshape(len(x), -1), dtype=torch.float32) / 255.0
    return x, torch.tensor(y.astype(np.int64))


class Model:
    def __init__(self, sizes, classes, head, gen):
        self.w, self.b, self.hw, self.hb = [], [], [], []
        for k in range(len(sizes) - 1):
            w = torch.randn(sizes[k + 1], sizes[k], generator=gen) / sizes[k] ** 0.5
            self.w.append(w.requires_grad_())
            self.b.append(torch.zeros(sizes[k + 1], requires_grad=True))
        for k in range(1, len(sizes) - 1 if head > 0 else 1):
            w = torch.randn(classes, sizes[k], generator=gen) / sizes[k] ** 0.5
            self.hw.append(w.requires_grad_())
            self.hb.append(torch.zeros(classes, requires_grad=True))

    def params(self):
        return self.w + self.b + self.hw + self.hb

    def forward(self, x):
        """Hidden activities (each layer on a detached input) and the top's logits."""
        hs = []
        for k in range(len(self.w) - 1):
            x = F.relu(F.linear(x.detach(), self.w[k], self.b[k]))
            hs.append(x)
        return hs, F.linear(x.detach(), self.w[-1], self.b[-1])


def twin_loss(objective, u, v, y, tau):
    if objective == "cosine":
        return (1 - F.cosine_similarity(u, v, dim=1, eps=1e-8)).mean()
    s = F.normalize(u, dim=1, eps=1e-8) @ F.normalize(v, dim=1, eps=1e-8).t() / tau
    if objective == "supcon":
        pos = (y[:, None] == y[None, :]).float()
    else:
        pos = torch.eye(len(y))
    logp = s - torch.logsumexp(s, dim=1, keepdim=True)
    return (-(logp * pos).sum(1) / pos.sum(1)).mean()


def top_loss(z, y, classes):
    p = F.softmax(z, dim=1).clamp(1e-7, 1 - 1e-7)
    t = F.one_hot(y, classes).float()
    return -(t * p.log() + (1 - t) * (1 - p).log()).mean()


def pair_cosine(h):
    u = F.normalize(h[:1000], dim=1, eps=1e-8)
    n = len(u)
    return ((u @ u.t()).sum() - (u * u).sum()).item() / (n * (n - 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--sizes", default="784,64,64,10")
    ap.add_argument("--objective", choices=("cosine", "infonce", "supcon"), default="supcon")
    ap.add_argument("--twin", type=float, default=1.0)
    ap.add_argument("--head", type=float, default=0.0)
    ap.add_argument("--tau", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--cooldown", action="store_true")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sizes = [int(s) for s in a.sizes.split(",")]
    classes = sizes[-1]
    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "t10k")
    gen = torch.Generator().manual_seed(a.seed)
    models = [Model(sizes, classes, a.head, gen), Model(sizes, classes, a.head, gen)]
    params = models[0].params() + models[1].params()
    opt = torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    shuffle = torch.Generator().manual_seed(a.seed)
    n = len(xtr)
    for epoch in range(a.epochs):
        rate = min(1.0, 2.0 * (a.epochs - epoch) / a.epochs) if a.cooldown else 1.0
        for g in opt.param_groups:
            g["lr"] = a.lr * rate
        order = torch.randperm(n, generator=shuffle)
        for k in range(0, n, a.batch):
            idx = order[k:k + a.batch]
            x, y = xtr[idx], ytr[idx]
            (ha, za), (hb, zb) = models[0].forward(x), models[1].forward(x)
            loss = top_loss(za, y, classes) + top_loss(zb, y, classes)
            for d in range(len(ha)):
                if a.twin > 0:
                    loss = loss + a.twin * (twin_loss(a.objective, ha[d], hb[d].detach(), y, a.tau)
                                            + twin_loss(a.objective, hb[d], ha[d].detach(), y,
                                                        a.tau))
                if a.head > 0:
                    for m, h in ((models[0], ha[d]), (models[1], hb[d])):
                        loss = loss + a.head * F.cross_entropy(F.linear(h, m.hw[d], m.hb[d]), y)
            opt.zero_grad()
            loss.backward()  # each term reaches only its own layer's parameters
            opt.step()
        with torch.no_grad():
            (ha, za), (hb, zb) = models[0].forward(xte), models[1].forward(xte)
            pa, pb = F.softmax(za, dim=1), F.softmax(zb, dim=1)
            err = lambda p: (p.argmax(1) != yte).float().mean().item()
            res = (err(pa + pb), err(pa), err(pb))
            print("epoch %d test_error=%.4f a=%.4f b=%.4f" % ((epoch + 1,) + res), flush=True)
    cos = ",".join("%.3f" % pair_cosine(h) for h in ha + hb)
    print("peer_mirror objective=%s twin=%g head=%g sizes=%s test_error=%.4f a=%.4f b=%.4f "
          "pair_cosine=%s" % ((a.objective, a.twin, a.head, a.sizes) + res + (cos,)))


if __name__ == "__main__":
    main()
