#!/usr/bin/python3
"""producer: an example external producer for an ffstream source that binds
a ZeroMQ PULL endpoint.

It connects a PUSH socket to --connect and sends one ffstream v2 DATA frame
per sample, as proto/README.md (sections 2-5 and 9) describes: a MessagePack
header map, then the row as float32 little-endian.

  header: v 2, kind 1 (DATA), phase 0 (train), seq (0, 1, 2, ... one per
          frame), epoch 0, tick 0, stage 0, rows 1, cols --dim, aux 0,
          ts (capture time, ns), labels (bin, 1 byte: the true label, or 255
          when there is none), ids (bin, 4 bytes LE: the sample's index)
  roles:  absent (the row is neutral)

ts is time.time_ns() (ns since the epoch), taken when the sample is read,
just before it is encoded. proto/README.md, section 3, describes `ts` as
the source host's monotonic clock (what ffstream's own source writes);
--clock monotonic sends time.monotonic_ns() instead, for a receiver on the
same host that measures latency against that clock.

Input: the MNIST IDX images of --data (train split by default), each pixel /
255, with their labels; or, with --random, uniform random vectors in [0, 1)
of --dim floats, with label 255 (none).

--bad N also sends N malformed messages, spread evenly through the stream
(at its start when the stream is endless), cycling through: garbage bytes
(not a MessagePack map), a wrong version (a well-formed frame with v = 1)
and a wrong width (a well-formed frame whose cols is --dim + 1, with that
many floats), so that a receiver's counters of bad frames can be checked.
They do not advance seq (each carries the seq of the good frame that
follows it).

Examples:
  python3 proto/examples/producer.py --connect tcp://127.0.0.1:5601
  python3 proto/examples/producer.py --connect ipc:///tmp/ffs/in --random --dim 784 --limit 1000 --rate 200

Needs only pyzmq, msgpack, numpy and the standard library.
"""
import argparse
import os
import struct
import sys
import time

import msgpack
import numpy as np
import zmq

PROTO_VERSION = 2
DATA, MARK = 1, 4
TRAIN = 0
LABEL_NONE = 255
# the repository's data/mnist, wherever this is run from
MNIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "mnist")


def load_idx(path):
    """A raw (not gzipped) IDX file of unsigned bytes as a numpy uint8 array."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SystemExit(f"producer: {e} (--data names the folder of the IDX files; "
                         f"--random sends random rows instead)")
    if len(data) < 4:
        raise SystemExit(f"producer: {path}: too short for an IDX file")
    zero, kind, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or kind != 0x08 or ndim == 0:
        raise SystemExit(f"producer: {path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise SystemExit(f"producer: {path}: {arr.size} bytes of data, header declares {dims}")
    return arr.reshape(dims)


def header(seq, cols, ts, label, index, v=PROTO_VERSION, kind=DATA, rows=1):
    """The header map in the order ffstream's encoder writes it (v first)."""
    hdr = {"v": v, "kind": kind, "phase": TRAIN, "seq": seq, "epoch": 0, "tick": 0,
           "stage": 0, "rows": rows, "cols": cols, "aux": 0}
    if ts:
        hdr["ts"] = ts
    if rows:
        hdr["labels"] = bytes([label])
        hdr["ids"] = struct.pack("<I", index & 0xFFFFFFFF)
    return msgpack.packb(hdr, use_bin_type=True)


def encode_data(seq, row, ts, label, index):
    """One DATA frame of one row (a float32 numpy vector)."""
    return header(seq, row.shape[0], ts, label, index) + row.astype("<f4", copy=False).tobytes()


def bad_message(k, seq, dim, rng):
    """The k-th malformed message: garbage, wrong version, wrong cols, in turn."""
    which = k % 3
    if which == 0:  # garbage: starts with 0xc1 (never used in MessagePack), random after
        return "garbage", b"\xc1" + rng.integers(0, 256, 63, dtype=np.uint8).tobytes()
    row = np.zeros(dim + (which == 2), dtype="<f4")
    v = 1 if which == 1 else PROTO_VERSION
    return ("wrong version" if which == 1 else "wrong cols",
            header(seq, row.shape[0], time.time_ns(), LABEL_NONE, 0, v=v) + row.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--connect", default="tcp://127.0.0.1:5601", metavar="ENDPOINT",
                    help="the source's PULL endpoint (default %(default)s)")
    ap.add_argument("--data", default=os.path.normpath(MNIST),
                    help="folder of the MNIST IDX files (default: the repository's data/mnist)")
    ap.add_argument("--split", choices=("train", "t10k"), default="train")
    ap.add_argument("--random", action="store_true", help="random vectors in place of MNIST")
    ap.add_argument("--dim", type=int, default=784, help="floats per row (MNIST: must be 784)")
    ap.add_argument("--limit", type=int, default=0,
                    help="send N samples (0 = the whole file; with --random, endless)")
    ap.add_argument("--rate", type=float, default=0.0, help="frames per second (0 = as fast as possible)")
    ap.add_argument("--bad", type=int, default=0, metavar="N", help="also send N malformed messages")
    ap.add_argument("--seed", type=int, default=1, help="seed of --random and of the garbage bytes")
    ap.add_argument("--clock", choices=("realtime", "monotonic"), default="realtime",
                    help="ts: time.time_ns() (default) or time.monotonic_ns()")
    ap.add_argument("--mark", action="store_true",
                    help="end with a MARK frame (kind 4, rows 0, cols 0)")
    ap.add_argument("--timeout", type=float, default=0.0,
                    help="give up when a send blocks this many seconds (0 = wait)")
    ap.add_argument("--linger", type=float, default=10.0,
                    help="seconds to wait at exit for queued frames to go out")
    ap.add_argument("--quiet", action="store_true", help="no summary on stderr")
    a = ap.parse_args()
    if a.dim <= 0:
        raise SystemExit("producer: --dim must be positive")
    if a.limit < 0 or a.bad < 0 or a.rate < 0:
        raise SystemExit("producer: --limit, --bad and --rate must not be negative")

    rng = np.random.default_rng(a.seed)
    if a.random:
        images, labels = None, None
        n = a.limit if a.limit > 0 else None  # None: endless
    else:
        prefix = "train" if a.split == "train" else "t10k"
        images = load_idx(os.path.join(a.data, f"{prefix}-images-idx3-ubyte"))
        labels = load_idx(os.path.join(a.data, f"{prefix}-labels-idx1-ubyte"))
        images = images.reshape(images.shape[0], -1)
        if images.shape[1] != a.dim:
            raise SystemExit(f"producer: the images have {images.shape[1]} pixels, --dim is {a.dim}")
        if labels.shape[0] != images.shape[0]:
            raise SystemExit("producer: the image and label files differ in length")
        n = images.shape[0] if a.limit == 0 else min(a.limit, images.shape[0])
    clock = time.time_ns if a.clock == "realtime" else time.monotonic_ns

    # where the bad messages go: before good frame bad_at[k], evenly spread
    if a.bad and n:
        bad_at = [(k + 1) * n // (a.bad + 1) for k in range(a.bad)]
    else:
        bad_at = [0] * a.bad

    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, int(a.linger * 1000))
    if a.timeout > 0:
        sock.setsockopt(zmq.SNDTIMEO, int(a.timeout * 1000))
    sock.connect(a.connect)

    sent = bad_sent = 0
    seq = 0
    k_bad = 0
    t0 = time.perf_counter()
    i = 0
    try:
        while n is None or i < n:
            while k_bad < a.bad and bad_at[k_bad] <= i:
                _, msg = bad_message(k_bad, seq, a.dim, rng)
                sock.send(msg)
                k_bad += 1
                bad_sent += 1
            if a.rate > 0:
                wait = t0 + i / a.rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            if images is None:
                row = rng.random(a.dim, dtype=np.float32)
                label = LABEL_NONE
            else:
                row = images[i].astype(np.float32) / np.float32(255.0)
                label = int(labels[i])
            sock.send(encode_data(seq, row, clock(), label, i))
            seq += 1
            sent += 1
            i += 1
        while k_bad < a.bad:  # n was 0: nothing to spread them among
            _, msg = bad_message(k_bad, seq, a.dim, rng)
            sock.send(msg)
            k_bad += 1
            bad_sent += 1
        if a.mark:
            sock.send(header(seq, 0, 0, LABEL_NONE, 0, kind=MARK, rows=0))
            seq += 1
    except zmq.Again:
        print(f"producer: a send blocked for {a.timeout:g} s (is anything bound at {a.connect}?); "
              f"{sent} frames sent", file=sys.stderr)
        sock.close(linger=0)
        ctx.term()
        return 1
    except KeyboardInterrupt:
        pass
    dt = time.perf_counter() - t0
    sock.close()
    ctx.term()  # waits up to --linger for the queued frames to go out
    if not a.quiet:
        print(f"producer: {sent} frames ({bad_sent} malformed besides{', and a MARK' if a.mark else ''}) "
              f"to {a.connect} in {dt:.3f} s = {sent / dt if dt > 0 else 0:.0f} frames/s",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
