#!/usr/bin/python3
"""plot_scaling: training throughput against cores, with the physical limit.

  /usr/bin/python3 bench/plot_scaling.py docs/scaling.csv docs/scaling.png

The CSV (written by bench/throughput.sh) has one row per core count:
cores,limit,ffstream,ffstream_sharded,pytorch (training samples/s; 0 = not
measured).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: plot_scaling.py SCALING.csv OUT.png")
    rows = list(csv.DictReader(open(sys.argv[1])))
    if not rows:
        raise SystemExit(f"{sys.argv[1]}: no rows")
    cores = [int(r["cores"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    series = [("limit", "physical limit (cores x sgemm peak / FLOPs)", "k--"),
              ("ffstream", "ffstream, 5 processes", "o-"),
              ("ffstream_sharded", "ffstream, l2 in 2 shards", "s-"),
              ("pytorch", "PyTorch peer, best setting", "^-")]
    for key, label, style in series:
        pts = [(c, float(r[key])) for c, r in zip(cores, rows) if float(r[key]) > 0]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
    ax.set_xlabel("cores")
    ax.set_ylabel("training samples/s (784-1000x3, batch 100)")
    ax.set_xticks(cores)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Training throughput against cores")
    fig.tight_layout()
    fig.savefig(sys.argv[2])
    print(f"plot_scaling: wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
