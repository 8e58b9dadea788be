#!/usr/bin/python3
"""bench/restart_speed.py: how fast a run goes on after a kill -9 of a layer.

Runs a topology and kills one stage with SIGKILL at chosen moments; the
launcher restarts it from its checkpoint each time. A moment is one of
  train  the middle of an epoch's training phase,
  eval   as soon as the readout has the epoch's training MARK (the source is
         then streaming the evaluation: candidate frames in flight),
  ckpt   while the stage writes a checkpoint (its temp file exists).
Each epoch's training rate comes from metrics.csv (train_s per epoch, the
readout's clock). Kill k happens in epoch 4 + 3k (1-based). This machine's
speed drifts within a run by itself, so every killed run has an untouched
twin run right before it (same command, no kill), and each epoch's rate is
taken relative to the twin's same epoch. "Before" is that relative rate
over epochs 2-3 (epoch 1 is the warm-up), "after" a kill over the two
epochs after the one it happened in (the stage is back by then); the
figure is after / before. With --rounds R the pairs of runs repeat and the
median over rounds is reported.

  bench/restart_speed.py [--config C] [--stage S] [--kills train,eval,ckpt]
                         [--epochs N] [--train-limit N] [--set K=V ...]
                         [--out DIR] [--min-ratio R] [--rounds N]
Prints one line per kill and round and the medians; exits 1 if a median
"after" falls under R x "before" (R = 0.8 unless given) or a run does not
finish.
"""
import argparse
import csv
import glob
import json
import os
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stage_pid(launcher, stage):
    """The pid of `ffstream stage --name STAGE` spawned by launcher, or None."""
    want = ["--name", stage, "--run-dir", f"/tmp/ffs-{launcher}"]
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        for i in range(len(argv) - 3):
            if argv[i:i + 4] == want:
                return int(d[6:])
    return None


def progress_lines(out):
    try:
        with open(os.path.join(out, "progress")) as f:
            return [l.split() for l in f if l.strip()]
    except OSError:
        return []


def run_once(a, kills, out):
    """Runs the topology, killing a.stage at the moments in kills. Returns
    (per-epoch samples/s, [(moment, epoch index, seconds into it)], ok)."""
    subprocess.run(["rm", "-rf", out], check=True)
    cmd = [a.exe, "run", a.config, "--epochs", str(a.epochs), "--out", out, "--quiet",
           "--set", f"data.train_limit={a.train_limit}", "--set", "data.test_limit=2000"]
    for s in a.set:
        cmd += ["--set", s]
    print("bench: " + " ".join(cmd) + (f"   (kill -9 {a.stage}: {','.join(kills)})" if kills else
                                       "   (untouched)"), flush=True)
    log = open(out + ".log", "w")
    run = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    done = []
    ckpt_dir = os.path.join(out, "ckpt")
    for n, moment in enumerate(kills):
        epoch = 3 + 3 * n  # 0-based: two clean epochs after each restart
        # the epoch's training starts: the previous epoch's evaluation is in
        while run.poll() is None and ["evaluated", str(epoch - 1)] not in progress_lines(out):
            time.sleep(0.002)
        t_start = time.time()
        if moment == "train":  # the epoch's middle, from the previous epoch's time
            rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
            per = float(rows[-1]["train_s"]) - (float(rows[-2]["train_s"]) if len(rows) > 1 else 0)
            time.sleep(per / 2)
        elif moment == "eval":
            while run.poll() is None and ["trained", str(epoch)] not in progress_lines(out):
                time.sleep(0.001)
        else:  # ckpt: the stage's temp file exists (every ckpt_every_s, and at each MARK)
            pat = os.path.join(ckpt_dir, a.stage + ".safetensors.tmp.*")
            while run.poll() is None and not glob.glob(pat):
                time.sleep(0.0005)
        if run.poll() is not None:
            break
        pid = stage_pid(run.pid, a.stage)
        if pid is None:
            print(f"restart_speed: no process for stage '{a.stage}'", file=sys.stderr)
            break
        os.kill(pid, signal.SIGKILL)
        done.append((moment, epoch, time.time() - t_start))
    rc = run.wait()
    log.close()
    rows = list(csv.DictReader(open(os.path.join(out, "metrics.csv"))))
    summary = json.load(open(os.path.join(out, "summary.json")))
    train_s = [float(r["train_s"]) for r in rows]
    per_epoch = [train_s[0]] + [train_s[i] - train_s[i - 1] for i in range(1, len(train_s))]
    rate = [a.train_limit / s for s in per_epoch]
    ok = rc == 0 and summary["status"] == "ok" and len(done) == len(kills)
    ok = ok and len(rate) == a.epochs
    if kills and "restarting" not in open(out + ".log").read():
        ok = False
        print("restart_speed: the launcher never restarted the stage", file=sys.stderr)
    print(f"  epoch rates (samples/s): {' '.join(f'{r:.0f}' for r in rate)}; exit {rc}, "
          f"test error {100 * (summary['test_error'] or 0):.2f} %", flush=True)
    return rate, done, ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/mnist-ff.yaml")
    ap.add_argument("--stage", default="l2")
    ap.add_argument("--kills", default="train,eval,ckpt")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--train-limit", type=int, default=20000)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--out", default="runs/restart-speed")
    ap.add_argument("--min-ratio", type=float, default=0.8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--exe", default="build/ffstream")
    a = ap.parse_args()
    os.chdir(ROOT)
    kills = [k for k in a.kills.split(",") if k]
    for k in kills:
        if k not in ("train", "eval", "ckpt"):
            sys.exit(f"restart_speed: unknown moment '{k}' (expected train, eval or ckpt)")
    need = 3 * len(kills) + 3
    if a.epochs < need:
        sys.exit(f"restart_speed: {len(kills)} kills need at least {need} epochs")
    ok = True
    ratios = [[] for _ in kills]
    for r in range(a.rounds):
        ref, _, ok_ref = run_once(a, [], a.out + "-ref")
        rate, done, ok_kill = run_once(a, kills, a.out)
        ok = ok and ok_ref and ok_kill
        if not (ok_ref and ok_kill):
            continue
        rel = [x / y for x, y in zip(rate, ref)]  # each epoch against its twin
        before = statistics.median(rel[1:3])
        for k, (moment, epoch, at) in enumerate(done):
            after = statistics.median(rel[epoch + 1:epoch + 3])
            ratios[k].append(after / before)
            print(f"  round {r + 1}, kill {k + 1} ({moment}, epoch {epoch + 1}, {at:.2f} s into "
                  f"it): after / before {100 * after / before:.0f} % (killed run against its "
                  f"twin: {100 * before:.0f} % before, {100 * after:.0f} % after)")
    for k, moment in enumerate(kills):
        if not ratios[k]:
            continue
        m = statistics.median(ratios[k])
        good = m >= a.min_ratio
        ok = ok and good
        print(f"kill {k + 1} ({moment}): median after / before over {len(ratios[k])} rounds "
              f"{100 * m:.0f} %{'' if good else '  BELOW ' + str(int(100 * a.min_ratio)) + ' %'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
