#!/usr/bin/python3
"""peer_dualprop: our own PyTorch multi-layer perceptron trained with plain
backprop (autograd) or with dual propagation (explicit matmuls, no autograd),
used to measure PyTorch's training throughput side by side with ffstream's
dual-propagation pipeline and as an accuracy reference.

Network: --sizes (default 784,1000,1000,1000,1000,10), hidden activation
--act relu|tanh, top layer linear; W ~ randn(out, in) / sqrt(in), b = 0, drawn
from a torch.Generator seeded with --seed. Input: pixels / 255 (float32).
Loss --loss ce (softmax cross-entropy) or se (0.5 * sum of squared errors
against the one-hot label), each a mean over the batch. Adam (0.9, 0.999,
1e-8) at --lr; --cooldown multiplies the rate in epoch e (0-based) by
min(1, 2 * (epochs - e) / epochs). Each epoch is shuffled by a second
torch.Generator seeded with --seed.

Dual propagation (--rule dualprop, --alpha, --beta): one forward pass keeps
each layer's input x_k and pre-activation a_k; one top-down sweep then sets
the top layer's dz = dloss/da_L and its nudge s+ - s- = -beta * dz, and for
each hidden layer k, fb = (s+_{k+1} - s-_{k+1}) @ W_{k+1},
s+_k = f(a_k + (1 - alpha) fb), s-_k = f(a_k - alpha fb),
dz_k = -(s+_k - s-_k) / beta. Layer k's gradient is dz_k^T x_k (weights) and
the column sums of dz_k (biases); Adam then steps every layer. As beta -> 0
this is backprop's gradient (--check-grad compares the two on one batch).

Only the training loop is timed (not data loading or evaluation). Typical:
  /usr/bin/python3 bench/peer_dualprop.py --rule dualprop --threads 2
prints per epoch "epoch E train_s=... samples/s=... [test_error=...]" (E from
1) and at the end one line
  "peer_dualprop rule=R threads=T batch=B epochs=E samples/s=X test_error=Y"
with the test error (argmax of the top layer) as a fraction.
"""
import argparse
import math
import os
import time

import torch
import torch.nn.functional as F

from idx import read_idx


def load_set(data_dir, name, split, limit):
    """(x float32 [N, pixels] in [0, 1], labels int64 [N]) of the first limit
    samples (all when limit <= 0) of split "train" or "t10k"."""
    d = os.path.join(data_dir, name)
    images = torch.from_numpy(read_idx(os.path.join(d, f"{split}-images-idx3-ubyte")))
    labels = torch.from_numpy(read_idx(os.path.join(d, f"{split}-labels-idx1-ubyte"))).long()
    if limit > 0:
        images, labels = images[:limit], labels[:limit]
    x = images.reshape(images.shape[0], -1).float().div_(255.0)
    return x.contiguous(), labels.contiguous()


class MLP:
    def __init__(self, sizes, act, loss, seed, dtype=torch.float32):
        gen = torch.Generator().manual_seed(seed)
        self.w, self.b = [], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            w = torch.randn(n_out, n_in, generator=gen) / math.sqrt(n_in)
            self.w.append(w.to(dtype).requires_grad_())
            self.b.append(torch.zeros(n_out, dtype=dtype).requires_grad_())
        self.f = torch.relu if act == "relu" else torch.tanh
        self.loss = loss

    def params(self):
        return [p for pair in zip(self.w, self.b) for p in pair]

    def forward(self, x):
        """Top layer's pre-activation; autograd follows it if enabled."""
        h = x
        last = len(self.w) - 1
        for k, (w, b) in enumerate(zip(self.w, self.b)):
            h = F.linear(h, w, b)
            if k < last:
                h = self.f(h)
        return h

    def loss_of(self, top, y):
        if self.loss == "ce":
            return F.cross_entropy(top, y)
        onehot = F.one_hot(y, top.shape[1]).to(top.dtype)
        return 0.5 * (top - onehot).pow(2).sum(1).mean()

    def backprop_grads(self, x, y):
        """Sets p.grad of every parameter by autograd."""
        for p in self.params():
            p.grad = None
        with torch.enable_grad():
            self.loss_of(self.forward(x), y).backward()

    @torch.no_grad()
    def dualprop_grads(self, x, y, alpha, beta):
        """Sets p.grad of every parameter by one dual-propagation sweep."""
        xs, zs = [], []  # each layer's input x_k and pre-activation a_k
        h = x
        last = len(self.w) - 1
        for k in range(last + 1):
            xs.append(h)
            a = torch.addmm(self.b[k], h, self.w[k].t())
            zs.append(a)
            if k < last:
                h = self.f(a)
        top = zs[-1]
        rows = top.shape[0]
        if self.loss == "ce":
            dz = torch.softmax(top, 1)
        else:
            dz = top.clone()
        dz[torch.arange(rows), y] -= 1.0
        dz.div_(rows)
        diff = dz * (-beta)  # s+ - s- of the top layer
        grads = [None] * (last + 1)
        grads[last] = dz
        for k in range(last - 1, -1, -1):
            fb = diff @ self.w[k + 1]
            a = zs[k]
            sp = self.f(a + (1.0 - alpha) * fb)
            sm = self.f(a - alpha * fb)
            diff = sp.sub_(sm)
            grads[k] = diff * (-1.0 / beta)
        for k in range(last + 1):
            self.w[k].grad = grads[k].t() @ xs[k]
            self.b[k].grad = grads[k].sum(0)

    @torch.no_grad()
    def test_error(self, x, y, chunk=1000):
        wrong = 0
        for i in range(0, x.shape[0], chunk):
            top = self.forward(x[i:i + chunk])
            wrong += (top.argmax(1) != y[i:i + chunk]).sum().item()
        return wrong / x.shape[0]


def check_grad(a, sizes, x, y):
    """Compares dual propagation's gradient with autograd's on the first
    batch, in float32 and float64; prints per layer the largest absolute
    difference divided by the largest absolute autograd gradient."""
    xb, yb = x[:a.batch], y[:a.batch]
    print(f"check_grad rule=dualprop alpha={a.alpha} beta={a.beta} act={a.act} "
          f"loss={a.loss} batch={xb.shape[0]}")
    for dtype in (torch.float32, torch.float64):
        net = MLP(sizes, a.act, a.loss, a.seed, dtype)
        xd = xb.to(dtype)
        net.backprop_grads(xd, yb)
        ref = [p.grad.clone() for p in net.params()]
        net.dualprop_grads(xd, yb, a.alpha, a.beta)
        got = [p.grad for p in net.params()]
        name = str(dtype).replace("torch.", "")
        for k in range(len(net.w)):
            rel = []
            for r, g in ((ref[2 * k], got[2 * k]), (ref[2 * k + 1], got[2 * k + 1])):
                scale = r.abs().max().item()
                rel.append((g - r).abs().max().item() / scale if scale > 0 else
                           (g - r).abs().max().item())
            print(f"check_grad {name} layer {k + 1} "
                  f"{sizes[k]}->{sizes[k + 1]} W max_rel_diff={rel[0]:.3e} "
                  f"b max_rel_diff={rel[1]:.3e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="784,1000,1000,1000,1000,10")
    ap.add_argument("--act", choices=("relu", "tanh"), default="relu")
    ap.add_argument("--loss", choices=("ce", "se"), default="ce")
    ap.add_argument("--rule", choices=("backprop", "dualprop"), default="backprop")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--cooldown", action="store_true",
                    help="rate times min(1, 2*(epochs-e)/epochs) in epoch e (0-based)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", choices=("mnist", "fashion"), default="mnist")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--train-limit", type=int, default=0, help="first N training samples (0 = all)")
    ap.add_argument("--test-limit", type=int, default=0, help="first N test samples (0 = all)")
    ap.add_argument("--eval-every-epoch", action="store_true")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--keep-denormal", action="store_true",
                    help="do not flush subnormal floats to zero (torch.set_flush_denormal)")
    ap.add_argument("--check-grad", action="store_true",
                    help="compare dualprop's gradient with autograd's on one batch, then exit")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    # subnormal gradients (confident samples) slow every matmul down; ffstream's
    # stages flush them to zero, and so does this peer unless told not to
    torch.set_flush_denormal(not a.keep_denormal)
    sizes = [int(s) for s in a.sizes.split(",")]
    if len(sizes) < 2:
        raise SystemExit("--sizes needs at least two numbers")

    x_train, y_train = load_set(a.data_dir, a.data, "train", a.train_limit)
    if x_train.shape[1] != sizes[0]:
        raise SystemExit(f"--sizes starts with {sizes[0]}, the images have {x_train.shape[1]} pixels")
    if a.check_grad:
        check_grad(a, sizes, x_train, y_train)
        return
    x_test, y_test = load_set(a.data_dir, a.data, "t10k", a.test_limit)

    net = MLP(sizes, a.act, a.loss, a.seed)
    opt = torch.optim.Adam(net.params(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    shuffle = torch.Generator().manual_seed(a.seed)
    n = x_train.shape[0]
    total_s, total_samples, err = 0.0, 0, None
    for e in range(a.epochs):
        if a.cooldown:
            for g in opt.param_groups:
                g["lr"] = a.lr * min(1.0, 2.0 * (a.epochs - e) / a.epochs)
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=shuffle)
        for i in range(0, n, a.batch):
            idx = order[i:i + a.batch]
            xb, yb = x_train[idx], y_train[idx]
            if a.rule == "backprop":
                net.backprop_grads(xb, yb)
            else:
                net.dualprop_grads(xb, yb, a.alpha, a.beta)
            opt.step()
        dt = time.perf_counter() - t0
        total_s += dt
        total_samples += n
        line = f"epoch {e + 1} train_s={dt:.3f} samples/s={n / dt:.0f}"
        if a.eval_every_epoch or e == a.epochs - 1:
            err = net.test_error(x_test, y_test)
            line += f" test_error={err:.4f}"
        print(line, flush=True)
    if err is None:  # --epochs 0
        err = net.test_error(x_test, y_test)
    rate = total_samples / total_s if total_s > 0 else 0.0
    print(f"peer_dualprop rule={a.rule} threads={torch.get_num_threads()} "
          f"batch={a.batch} epochs={a.epochs} samples/s={rate:.0f} test_error={err:.4f}")


if __name__ == "__main__":
    main()
