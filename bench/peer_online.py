#!/usr/bin/python3
"""peer_online: an online-backprop baseline for the streaming benchmark.

A 784-500-500-10 network (ReLU, softmax cross-entropy), SGD with momentum
(PyTorch's form: v = momentum * v + g; w -= lr * v), batch 1, one pass over
the 60 000 MNIST training images in file order (no shuffle: the stream plays
the file in order). Inputs are pixel / 255, nothing else (no mean/std
normalisation). Weights start as PyTorch's nn.Linear defaults
(uniform +-1/sqrt(fan_in), weights and biases), from --seed.

The defaults, lr 0.001 and momentum 0.9 (a step of lr / (1 - momentum) =
0.01 in the steady state), were tuned on full passes (seed 1 unless said):

  lr      momentum  prequential  last 10 000  test error
  0.01    0.9       36.8 %       27.2 %       74.9 %  (diverges; so does autograd + optim.SGD)
  0.003   0.9       92.9 %       95.7 %       5.55 %
  0.002   0.9       93.6 %       96.6 %       4.21 %  (seeds 2, 3: 4.45, 3.86 %)
  0.001   0.9       93.5 %       96.8 %       4.06 %  (seeds 2, 3: 4.35, 3.69 %)
  0.0005  0.9       92.2 %       96.4 %       4.43 %
  0.01    0.5       93.7 %       96.7 %       4.79 %
  0.005   0.5       93.6 %       96.7 %       3.47 %  (seeds 2, 3: 4.20, 4.15 %)
  0.01    0         93.5 %       96.7 %       3.79 %
  0.02    0         93.5 %       96.5 %       4.28 %

Every setting with a steady-state step of 0.01 to 0.02 lands at 93.5 % +- 0.2
prequential; the test error moves by +-0.4 % between seeds.

Prequential evaluation: each sample is first predicted with the current
weights (the argmax of the logits of the same forward pass the step then
uses), counted right or wrong, then learned from. Reported: prequential
accuracy over the whole stream and over its last 10 000 samples, the test
error on the 10 000 t10k images after the pass, training samples/s (the
wall clock of the pass, prediction and learning together) and the torch
threads used; the JSON also holds the pass's CPU seconds (all threads), which
tell a pass slowed by other processes on the cores (wall >> CPU at 1 thread).

The per-sample step is written by hand (--impl manual, the default): three
matrix-vector products forward, two backward, three rank-1 updates into the
momentum buffers (addr_ with beta = momentum), every tensor preallocated and
every update in place; no autograd. --impl autograd does the same step with
nn.Linear, autograd and torch.optim.SGD, as a check of the hand-written
gradients (the same figures up to float rounding) and of what autograd costs.

Denormal floats are flushed to zero (torch.set_flush_denormal(True); off
with --keep-denormals): the momentum buffers' entries for pixels that are
off decay geometrically through the denormal range, and with them kept a
pass here ran 5x slower in CPU time, with the same predictions.

Fairness, as bench/throughput.sh runs bench/peer_torch.py: the script
re-executes itself with glibc malloc keeping its memory
(MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296
MALLOC_TOP_PAD_=268435456; values already set are kept; none with
--system-malloc), OPENBLAS_NUM_THREADS = --blas-threads (default: as set, or
1) and OPENBLAS_CORETYPE=SkylakeX on a CPU with avx512f unless set.

Threads: --threads sets torch's own (OpenMP) threads, which split the
elementwise updates of the 500x784 and 500x500 matrices; the BLAS calls at
batch 1 are matrix-vector products and rank-1 updates, too small to gain
from more BLAS threads. Full passes on 2 shared cores (Xeon, AVX-512,
torch 1.13 of Debian, OpenBLAS; idle before each run):

  torch threads  BLAS threads  samples/s           CPU s of the pass
  1              1             1508, 1704, 1605    37-40 (= wall)
  1              2             1545                78
  2              2              914,  928,  912    130
  2              1             2500, 2493          48

  /usr/bin/python3 bench/peer_online.py --threads 1 --json runs/peer_online.json
prints the figures, one "key: value" a line, and writes them as JSON.
"""
import argparse
import json
import os
import platform
import sys
import time

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "4294967296",
              "MALLOC_TRIM_THRESHOLD_": "4294967296",
              "MALLOC_TOP_PAD_": "268435456"}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/mnist", help="folder of the IDX files")
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--blas-threads", type=int, default=0, metavar="N",
                    help="OPENBLAS_NUM_THREADS (default: as set in the environment, or 1)")
    ap.add_argument("--limit", type=int, default=0, help="train on the first N samples only (0 = all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--impl", choices=("manual", "autograd"), default="manual")
    ap.add_argument("--last", type=int, default=10000, help="the tail window of the prequential figure")
    ap.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    ap.add_argument("--keep-denormals", action="store_true",
                    help="do not flush denormal floats to zero")
    ap.add_argument("--progress", type=int, default=10000, metavar="N",
                    help="a line on stderr every N samples (0 = none)")
    ap.add_argument("--system-malloc", action="store_true",
                    help="do not re-execute with the malloc settings above")
    return ap.parse_args()


def reexec_with_env(a):
    """Re-executes this script, once, when the environment differs from the
    one it should run in (glibc reads its malloc settings at start-up,
    OpenBLAS its thread count when loaded)."""
    env = dict(os.environ)
    if not a.system_malloc:
        for k, v in MALLOC_ENV.items():
            env.setdefault(k, v)
    if a.blas_threads > 0:
        env["OPENBLAS_NUM_THREADS"] = str(a.blas_threads)
    else:
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        with open("/proc/cpuinfo") as f:
            if " avx512f" in f.read():
                env.setdefault("OPENBLAS_CORETYPE", "SkylakeX")
    except OSError:
        pass
    if env != dict(os.environ):
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def init_params(gen, dims):
    """nn.Linear's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    import torch
    params = []
    for n_in, n_out in zip(dims, dims[1:]):
        bound = 1.0 / n_in ** 0.5
        w = torch.empty(n_out, n_in).uniform_(-bound, bound, generator=gen)
        b = torch.empty(n_out).uniform_(-bound, bound, generator=gen)
        params.append((w, b))
    return params


def progress(every, i, correct, t0, t_last):
    """A line on stderr for the window of `every` samples that ends at i."""
    now = time.perf_counter()
    acc = sum(correct[i + 1 - every:i + 1]) / every
    print(f"peer_online: {i + 1} samples, prequential {acc:.4f} over the last {every}, "
          f"{every / (now - t_last):.0f} samples/s", file=sys.stderr, flush=True)
    return now


def train_manual(params, x_all, y_list, n, lr, mom, every=0):
    """One prequential pass, hand-written backprop. Returns (correct flags, seconds)."""
    import torch
    (w1, b1), (w2, b2), (w3, b3) = params
    vw = [torch.zeros_like(w) for w in (w1, w2, w3)]
    vb = [torch.zeros_like(b) for b in (b1, b2, b3)]
    vw1, vw2, vw3 = vw
    vb1, vb2, vb3 = vb
    h1 = torch.empty(b1.shape)
    h2 = torch.empty(b2.shape)
    z3 = torch.empty(b3.shape)
    p = torch.empty(b3.shape)
    d2 = torch.empty(b2.shape)
    d1 = torch.empty(b1.shape)
    m2 = torch.empty(b2.shape)
    m1 = torch.empty(b1.shape)
    eye = torch.eye(b3.shape[0])
    w2t, w3t = w2.t(), w3.t()
    correct = bytearray(n)
    t0 = t_last = time.perf_counter()
    for i in range(n):
        x = x_all[i]
        y = y_list[i]
        # forward
        torch.addmv(b1, w1, x, out=h1).clamp_(min=0.0)
        torch.addmv(b2, w2, h1, out=h2).clamp_(min=0.0)
        torch.addmv(b3, w3, h2, out=z3)
        # prequential: predicted with the weights as they are, before the step
        correct[i] = int(z3.argmax()) == y
        # backward: dL/dz3 = softmax - onehot, then through the ReLUs
        torch.softmax(z3, 0, out=p)
        d3 = p.sub_(eye[y])
        torch.gt(h2, 0.0, out=m2)
        torch.mv(w3t, d3, out=d2).mul_(m2)
        torch.gt(h1, 0.0, out=m1)
        torch.mv(w2t, d2, out=d1).mul_(m1)
        # SGD with momentum: v = mom * v + g; w -= lr * v
        vw3.addr_(d3, h2, beta=mom)
        vw2.addr_(d2, h1, beta=mom)
        vw1.addr_(d1, x, beta=mom)
        vb3.mul_(mom).add_(d3)
        vb2.mul_(mom).add_(d2)
        vb1.mul_(mom).add_(d1)
        w3.sub_(vw3, alpha=lr)
        w2.sub_(vw2, alpha=lr)
        w1.sub_(vw1, alpha=lr)
        b3.sub_(vb3, alpha=lr)
        b2.sub_(vb2, alpha=lr)
        b1.sub_(vb1, alpha=lr)
        if every and (i + 1) % every == 0:
            t_last = progress(every, i, correct, t0, t_last)
    return correct, time.perf_counter() - t0


def train_autograd(params, x_all, y_list, n, lr, mom, every=0):
    """The same pass with nn.Linear, autograd and torch.optim.SGD."""
    import torch
    import torch.nn.functional as F
    layers = []
    for w, b in params:
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers.append(lin)
    net = torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(), layers[2])
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=mom)
    y_all = torch.tensor(y_list[:n], dtype=torch.long)
    correct = bytearray(n)
    t0 = t_last = time.perf_counter()
    for i in range(n):
        logits = net(x_all[i:i + 1])
        correct[i] = int(logits.detach().argmax()) == y_list[i]
        loss = F.cross_entropy(logits, y_all[i:i + 1])
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        if every and (i + 1) % every == 0:
            t_last = progress(every, i, correct, t0, t_last)
    dt = time.perf_counter() - t0
    with torch.no_grad():
        for (w, b), lin in zip(params, layers):
            w.copy_(lin.weight)
            b.copy_(lin.bias)
    return correct, dt


def test_error(params, x, y):
    import torch
    wrong = 0
    with torch.no_grad():
        for s in range(0, x.shape[0], 1000):
            h = x[s:s + 1000]
            for k, (w, b) in enumerate(params):
                h = torch.addmm(b, h, w.t())
                if k < len(params) - 1:
                    h.clamp_(min=0.0)
            wrong += int((h.argmax(1) != y[s:s + 1000]).sum())
    return wrong / x.shape[0]


def main():
    a = parse_args()
    reexec_with_env(a)
    import torch
    from idx import read_idx
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(a.impl == "autograd")
    flushed = torch.set_flush_denormal(not a.keep_denormals) and not a.keep_denormals
    gen = torch.Generator().manual_seed(a.seed)
    torch.manual_seed(a.seed)

    def load(name):
        return torch.from_numpy(read_idx(os.path.join(a.data, name)))

    tr_x = load("train-images-idx3-ubyte")
    tr_y = load("train-labels-idx1-ubyte")
    te_x = load("t10k-images-idx3-ubyte")
    te_y = load("t10k-labels-idx1-ubyte").long()
    n = tr_x.shape[0] if a.limit <= 0 else min(a.limit, tr_x.shape[0])
    x_all = tr_x[:n].reshape(n, -1).float().div_(255.0)
    y_list = tr_y[:n].tolist()
    te_x = te_x.reshape(te_x.shape[0], -1).float().div_(255.0)

    params = init_params(gen, [x_all.shape[1], 500, 500, 10])
    train = train_manual if a.impl == "manual" else train_autograd
    cpu0 = time.process_time()
    correct, dt = train(params, x_all, y_list, n, a.lr, a.momentum, a.progress)
    cpu = time.process_time() - cpu0
    torch.set_grad_enabled(False)

    last = min(a.last, n)
    res = {
        "impl": a.impl,
        "network": "784-500-500-10 relu, softmax cross-entropy",
        "lr": a.lr,
        "momentum": a.momentum,
        "seed": a.seed,
        "samples": n,
        "prequential_accuracy": sum(correct) / n,
        "last_window": last,
        "prequential_accuracy_last": sum(correct[n - last:]) / last if last else 0.0,
        "test_error": test_error(params, te_x, te_y),
        "train_seconds": dt,
        "samples_per_s": n / dt,
        "train_cpu_seconds": cpu,  # all threads of the process: contention shows as dt >> cpu
        "torch_threads": torch.get_num_threads(),
        "flush_denormal": flushed,
        "torch_version": torch.__version__,
        "env": {k: os.environ.get(k) for k in list(MALLOC_ENV) + ["OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE"]},
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }
    for k in ("prequential_accuracy", "prequential_accuracy_last", "test_error", "samples_per_s",
              "torch_threads", "lr", "momentum", "samples"):
        v = res[k]
        print(f"{k}: {v:.4f}" if isinstance(v, float) and k != "samples_per_s"
              else f"{k}: {v:.0f}" if isinstance(v, float) else f"{k}: {v}")
    if a.json:
        d = os.path.dirname(a.json)
        if d:
            os.makedirs(d, exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
