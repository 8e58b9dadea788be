#!/usr/bin/python3
"""peer_saliency: the backprop reference for `ffstream saliency --deletion`.

Trains a plain multi-layer perceptron with PyTorch's autograd on the same
data as an FF run (--sizes: the input and the FF layers' widths; then a
linear top with one output per class, the labels' count; relu between; W ~ randn(out, in) / sqrt(in), b = 0; softmax
cross-entropy; Adam at --lr; batches of --batch, each epoch shuffled; all
from --seed), then runs the same deletion test as ffstream's on the first
--test-limit test images:

- the class is the network's prediction on the intact image;
- the map is gradient x input: x * d(logit of the class)/dx;
- the first --masked pixels (where FF paints the label) go last in every
  order, as ffstream's do;
- pixels are set to 0 in the map's order, most salient first, in 5 % steps
  of the pixels (21 points, round(k * pixels / 20) removed at point k), and
  after each step the class's softmax probability is recorded;
- the score is the area under that curve (trapezoids over [0, 1]), the
  mean over the images with its standard error; lower = the map found
  what the network's decision rests on. A random order (torch.randperm
  from --seed) is the baseline.

Prints the run and the two areas, and as its last line
  "peer_saliency test_error=E grad_x_input_auc=A grad_x_input_se=S
   random_auc=R random_se=T"
(one line). Data: DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
  /usr/bin/python3 bench/peer_saliency.py --data data/mnist --train-limit 20000
"""
import argparse
import math
import os
import time

import torch
import torch.nn.functional as F

from idx import read_idx

STEPS = 21


def read_split(data_dir, split, limit):
    """x (N, pixels) float in [0, 1] and y (N,) int64: the first limit
    samples of split (all when limit <= 0)."""
    x = torch.from_numpy(read_idx(os.path.join(data_dir, f"{split}-images-idx3-ubyte")))
    y = torch.from_numpy(read_idx(os.path.join(data_dir, f"{split}-labels-idx1-ubyte"))).long()
    if limit > 0:
        x, y = x[:limit], y[:limit]
    return x.reshape(len(x), -1).float() / 255.0, y


def make_mlp(sizes, seed):
    gen = torch.Generator().manual_seed(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params.append((torch.randn(n_out, n_in, generator=gen) / math.sqrt(n_in)).requires_grad_())
        params.append(torch.zeros(n_out, requires_grad=True))
    return params


def logits_of(params, x):
    h = x
    for k in range(0, len(params), 2):
        h = F.linear(h, params[k], params[k + 1])
        if k + 2 < len(params):
            h = F.relu(h)
    return h


def train(params, x, y, epochs, batch, lr, seed):
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            loss = F.cross_entropy(logits_of(params, x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}: train loss {total / len(x):.4f}", flush=True)


def deletion_curves(params, x, cls, orders):
    """p (N, STEPS): the class's softmax probability after removing the
    first round(k * pixels / 20) pixels of each image's order."""
    n, d = x.shape
    p = torch.empty(n, STEPS)
    for k in range(STEPS):
        removed = int(round(k * d / (STEPS - 1)))
        xk = x.clone()
        if removed:
            xk.scatter_(1, orders[:, :removed], 0.0)
        with torch.no_grad():
            p[:, k] = F.softmax(logits_of(params, xk), dim=1).gather(1, cls[:, None])[:, 0]
    return p


def auc(p):
    """Area under each curve (trapezoids over [0, 1]): (N,)."""
    return (p[:, :-1] + p[:, 1:]).sum(dim=1) / (2 * (STEPS - 1))


def masked_last(scores, masked):
    """Each row's pixels by score, largest first (stable), the first masked
    pixels last."""
    rest = torch.argsort(scores[:, masked:], dim=1, descending=True, stable=True) + masked
    head = torch.arange(masked).expand(len(scores), masked)
    return torch.cat([rest, head], dim=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="folder of the IDX files (data/mnist)")
    ap.add_argument("--sizes", default="784,500,500,500", help="input, hidden widths")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--train-limit", type=int, default=20000)
    ap.add_argument("--test-limit", type=int, default=1000)
    ap.add_argument("--masked", type=int, default=10, help="pixels kept last (FF's label)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    sizes = [int(s) for s in a.sizes.split(",")]
    x, y = read_split(a.data, "train", a.train_limit)
    xt, yt = read_split(a.data, "t10k", a.test_limit)
    if x.shape[1] != sizes[0]:
        raise SystemExit(f"{a.data}: images of {x.shape[1]} pixels, --sizes starts at {sizes[0]}")
    sizes.append(int(y.max().item()) + 1)  # the top: one output per class
    params = make_mlp(sizes, a.seed)
    t0 = time.time()
    train(params, x, y, a.epochs, a.batch, a.lr, a.seed)
    print(f"trained {'-'.join(map(str, sizes))} on {len(x)} samples for {a.epochs} epochs "
          f"in {time.time() - t0:.1f} s", flush=True)

    xt = xt.clone().requires_grad_()
    logits = logits_of(params, xt)
    cls = logits.argmax(dim=1)
    test_error = (cls != yt).float().mean().item()
    logits.gather(1, cls[:, None]).sum().backward()  # each image's own class logit
    gxi = (xt.grad * xt).detach()
    xt = xt.detach()
    gen = torch.Generator().manual_seed(a.seed)
    shuffled = torch.stack([torch.randperm(xt.shape[1] - a.masked, generator=gen)
                            for _ in range(len(xt))]) + a.masked
    random_orders = torch.cat([shuffled, torch.arange(a.masked).expand(len(xt), a.masked)], 1)
    result = {}
    for name, orders in (("grad_x_input", masked_last(gxi, a.masked)),
                         ("random", random_orders)):
        areas = auc(deletion_curves(params, xt, cls, orders))
        se = areas.std(unbiased=True).item() / math.sqrt(len(areas)) if len(areas) > 1 else 0.0
        result[name] = (areas.mean().item(), se)
        print(f"MLP {name}: deletion AUC {result[name][0]:.4f} +- {se:.4f} "
              f"({len(areas)} test images)")
    print(f"peer_saliency test_error={test_error:.4f} "
          f"grad_x_input_auc={result['grad_x_input'][0]:.6f} "
          f"grad_x_input_se={result['grad_x_input'][1]:.6f} "
          f"random_auc={result['random'][0]:.6f} random_se={result['random'][1]:.6f}")


if __name__ == "__main__":
    main()
