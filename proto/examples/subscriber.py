#!/usr/bin/python3
"""subscriber: prints the predictions an ffstream prediction publisher sends.

It connects a ZeroMQ SUB socket to --connect, subscribes to everything, and
prints one line per message. Each message is one single-part MessagePack
map, one per sample:

  v           int    1
  index       uint   the sample's index in the stream
  ts          uint   capture time, ns since the epoch (0 = unknown)
  pred        int    predicted class (-1: the readout has no softmax)
  probs       array  the softmax probabilities (floats; empty when none)
  goodness    float  summed goodness of the readout's energy layers on the
                     sample's neutral row (a novelty score)
  label       int    the true label (-1 = unknown)
  latency_us  float  capture to prediction, microseconds

Keys other than these are ignored. A message that is not a map, or whose v
is not 1, is counted, reported on stderr and skipped (it does not count
towards --count).

A line: "index=12 pred=7 p=0.981 label=7 ok goodness=3.210 latency_us=845.2"
(p: the predicted class's probability; ok / WRONG only when the label is
known). With --json each message is printed as one JSON object holding the
keys above, in that order. At exit a summary goes to stderr: messages,
accuracy over those with a known label and a prediction, mean latency.

  python3 proto/examples/subscriber.py --connect tcp://127.0.0.1:5602 --count 100

Needs only pyzmq, msgpack and the standard library.
"""
import argparse
import json
import math
import os
import sys
import time

import msgpack
import zmq

KEYS = ("v", "index", "ts", "pred", "probs", "goodness", "label", "latency_us")
DEFAULTS = {"ts": 0, "pred": -1, "probs": [], "goodness": float("nan"), "label": -1,
            "latency_us": float("nan")}


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def parse(msg):
    """Returns the known keys of one message as a dict, or raises ValueError."""
    try:
        m = msgpack.unpackb(msg, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several kinds
        raise ValueError(f"not MessagePack ({e.__class__.__name__})")
    if not isinstance(m, dict):
        raise ValueError("not a map")
    if m.get("v") != 1:
        raise ValueError(f"version {m.get('v')!r}, expected 1")
    if not is_int(m.get("index")) or m["index"] < 0:
        raise ValueError("no index, or not an unsigned int")
    out = {"v": 1, "index": m["index"]}
    for k in KEYS[2:]:
        x = m.get(k, DEFAULTS[k])
        if k == "probs":
            if not isinstance(x, (list, tuple)) or not all(is_num(p) for p in x):
                raise ValueError("probs: not an array of numbers")
            x = [float(p) for p in x]
        elif k in ("ts", "pred", "label"):
            if not is_int(x):
                raise ValueError(f"{k}: not an int")
        else:
            if x is None:
                x = float("nan")
            if not is_num(x):
                raise ValueError(f"{k}: not a number")
            x = float(x)
        out[k] = x
    return out


def line(m):
    s = f"index={m['index']} pred={m['pred']}"
    if m["probs"] and 0 <= m["pred"] < len(m["probs"]):
        s += f" p={m['probs'][m['pred']]:.3f}"
    s += f" label={m['label']}"
    if m["label"] >= 0 and m["pred"] >= 0:
        s += " ok" if m["pred"] == m["label"] else " WRONG"
    s += f" goodness={m['goodness']:.3f} latency_us={m['latency_us']:.1f}"
    return s


def json_line(m):
    # NaN is not JSON: a missing float is written as null
    return json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                       for k, v in m.items()}, separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--connect", default="tcp://127.0.0.1:5602", metavar="ENDPOINT",
                    help="the prediction publisher's endpoint (default %(default)s)")
    ap.add_argument("--count", type=int, default=0, help="exit after N messages (0 = never)")
    ap.add_argument("--json", action="store_true", help="print each message as JSON")
    ap.add_argument("--timeout", type=float, default=0.0,
                    help="exit with status 2 after this many seconds without a message (0 = wait)")
    ap.add_argument("--quiet", action="store_true", help="no summary on stderr")
    a = ap.parse_args()

    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(a.connect)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)

    n = bad = labelled = right = 0
    lat_sum, lat_n = 0.0, 0
    rc = 0
    last = time.monotonic()
    try:
        while a.count <= 0 or n < a.count:
            if not poller.poll(200):  # wakes now and then, so Ctrl-C works
                if a.timeout > 0 and time.monotonic() - last > a.timeout:
                    print(f"subscriber: no message for {a.timeout:g} s", file=sys.stderr)
                    rc = 2
                    break
                continue
            msg = sock.recv()
            last = time.monotonic()
            try:
                m = parse(msg)
            except ValueError as e:
                bad += 1
                print(f"subscriber: skipped a message of {len(msg)} bytes: {e}", file=sys.stderr)
                continue
            n += 1
            if m["label"] >= 0 and m["pred"] >= 0:
                labelled += 1
                right += m["pred"] == m["label"]
            if math.isfinite(m["latency_us"]):
                lat_sum += m["latency_us"]
                lat_n += 1
            print(json_line(m) if a.json else line(m), flush=True)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        sock.close()
        ctx.term()
    if not a.quiet:
        acc = f"{right / labelled:.4f} over {labelled} labelled" if labelled else "no labelled"
        lat = f"{lat_sum / lat_n:.1f} us" if lat_n else "-"
        print(f"subscriber: {n} messages ({bad} skipped), accuracy {acc}, mean latency {lat}",
              file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
