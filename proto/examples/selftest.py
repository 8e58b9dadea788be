#!/usr/bin/python3
"""selftest: checks producer.py and subscriber.py against the formats they
implement, without ffstream.

1. Binds a PULL socket on ipc://<temp dir>/in0 and runs
   producer.py --limit 20 --random --dim 784 into it; decodes every frame
   with the minimal decoder below (written from proto/README.md, sections
   2-7, not with the producer's code) and checks the header's keys, types
   and values, the payload's size and the labels (255: none); then
   --limit 5 --bad 3, which must give 5 good frames and exactly the three
   malformed ones (garbage, wrong version, wrong cols); then, when the
   MNIST files are in data/mnist, --limit 5 from them: labels and pixels / 255
   as in the files.
2. Binds a PUB socket on ipc://<temp dir>/pred0 and runs
   subscriber.py --count 5 --json, publishing prediction messages (one every
   20 ms, the index counting up, with an unknown extra key) until it has
   printed 5 lines or 10 s have passed (a SUB socket misses what is
   published before it has joined); checks each printed object against the
   message of its index, and that the indexes follow one another. Then the
   same with the plain line output and --count 2.

Exit status 0 when everything holds; 1, with the reasons, otherwise.

  /usr/bin/python3 proto/examples/selftest.py
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PRODUCER = os.path.join(HERE, "producer.py")
SUBSCRIBER = os.path.join(HERE, "subscriber.py")
MNIST = os.path.join(ROOT, "data", "mnist")

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


# --- a minimal decoder of ffstream v2 frames (proto/README.md) -------------

SCALARS = {"v", "kind", "phase", "seq", "epoch", "tick", "stage", "rows", "cols", "aux",
           "shard", "nshards", "col0", "ts", "work"}
ARRAYS = {"roles", "labels", "cands", "ids"}


class Bad(Exception):
    pass


def _need(msg, off, n):
    if off + n > len(msg):
        raise Bad("entries run past the message")


def _uint(msg, off):
    """An unsigned MessagePack int at off: (value, next offset); anything else is Bad."""
    _need(msg, off, 1)
    b = msg[off]
    if b <= 0x7F:
        return b, off + 1
    widths = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
    if b not in widths:
        raise Bad(f"value 0x{b:02x} is not an unsigned int")
    w = widths[b]
    _need(msg, off + 1, w)
    return int.from_bytes(msg[off + 1:off + 1 + w], "big"), off + 1 + w


def _bin(msg, off):
    _need(msg, off, 1)
    b = msg[off]
    widths = {0xC4: 1, 0xC5: 2, 0xC6: 4}
    if b not in widths:
        raise Bad(f"value 0x{b:02x} is not bin")
    w = widths[b]
    _need(msg, off + 1, w)
    n = int.from_bytes(msg[off + 1:off + 1 + w], "big")
    off += 1 + w
    _need(msg, off, n)
    return bytes(msg[off:off + n]), off + n


def _key(msg, off):
    _need(msg, off, 1)
    b = msg[off]
    if 0xA0 <= b <= 0xBF:
        n, off = b & 0x1F, off + 1
    elif b == 0xD9:
        _need(msg, off, 2)
        n, off = msg[off + 1], off + 2
    else:
        raise Bad("a key that is not a fixstr/str8")
    if n > 16:
        raise Bad("a key longer than 16 bytes")
    _need(msg, off, n)
    return msg[off:off + n].decode("utf-8", "replace"), off + n


def decode(msg):
    """(header dict, keys in order, payload bytes) of one frame, or raises Bad.
    Unknown keys are not expected from the producer, so they are Bad here."""
    if not msg:
        raise Bad("an empty message")
    b = msg[0]
    if 0x80 <= b <= 0x8F:
        n, off = b & 0x0F, 1
    elif b == 0xDE:
        _need(msg, 0, 3)
        n, off = int.from_bytes(msg[1:3], "big"), 3
    elif b == 0xDF:
        _need(msg, 0, 5)
        n, off = int.from_bytes(msg[1:5], "big"), 5
    else:
        raise Bad("the header is not a MessagePack map")
    if n > 32:
        raise Bad("a map of more than 32 entries")
    hdr, order = {}, []
    for _ in range(n):
        k, off = _key(msg, off)
        if k in hdr:
            raise Bad(f"key {k} given twice")
        if k in SCALARS:
            hdr[k], off = _uint(msg, off)
        elif k in ARRAYS:
            hdr[k], off = _bin(msg, off)
        else:
            raise Bad(f"unexpected key {k}")
        order.append(k)
    if "v" not in hdr:
        raise Bad("no v")
    if hdr["v"] != 2:
        raise Bad(f"protocol version {hdr['v']}, expected 2")
    for k in ("kind", "rows", "cols"):
        if k not in hdr:
            raise Bad(f"no {k}")
    rows, cols = hdr["rows"], hdr["cols"]
    for k in ("roles", "labels", "cands"):
        if k in hdr and len(hdr[k]) != rows:
            raise Bad(f"{k} holds {len(hdr[k])} bytes for {rows} rows")
    if "ids" in hdr and len(hdr["ids"]) != 4 * rows:
        raise Bad(f"ids holds {len(hdr['ids'])} bytes for {rows} rows")
    payload = msg[off:]
    if len(payload) != rows * cols * 4:
        raise Bad(f"payload holds {len(payload)} bytes, header declares "
                  f"{rows}x{cols} floats = {rows * cols * 4} bytes")
    return hdr, order, payload


def floats(payload):
    return struct.unpack("<%df" % (len(payload) // 4), payload)


# --- 1. the producer --------------------------------------------------------

def run_producer(endpoint, args, expect):
    """Runs producer.py into a PULL socket bound at endpoint; returns the
    messages received (stops once the producer has exited and `expect` have
    come or nothing more comes for 0.5 s, or after 20 s)."""
    ctx = zmq.Context.instance()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.bind(endpoint)
    cmd = [sys.executable, PRODUCER, "--connect", endpoint, "--quiet", "--timeout", "10"] + args
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    msgs = []
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            if pull.poll(100):
                msgs.append(pull.recv())
            elif proc.poll() is not None and (len(msgs) >= expect or not pull.poll(500)):
                break  # the producer has gone (it drains its queue first) and nothing follows
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
        pull.close()
    check(proc.returncode == 0,
          f"producer {' '.join(args)}: exit status {proc.returncode}: {err.decode().strip()}")
    return msgs


def check_data_frame(tag, hdr, order, payload, i, t_lo, t_hi, dim):
    want_order = ["v", "kind", "phase", "seq", "epoch", "tick", "stage", "rows", "cols", "aux",
                  "ts", "labels", "ids"]
    ok = check(order == want_order, f"{tag} frame {i}: keys {order}, expected {want_order}")
    ok &= check(hdr["v"] == 2 and hdr["kind"] == 1 and hdr["phase"] == 0,
                f"{tag} frame {i}: v {hdr['v']} kind {hdr['kind']} phase {hdr['phase']}")
    ok &= check(hdr["rows"] == 1 and hdr["cols"] == dim,
                f"{tag} frame {i}: rows {hdr['rows']} cols {hdr['cols']}, expected 1 x {dim}")
    ok &= check(hdr["epoch"] == 0 and hdr["tick"] == 0 and hdr["stage"] == 0 and hdr["aux"] == 0,
                f"{tag} frame {i}: epoch/tick/stage/aux not 0")
    ok &= check(hdr["seq"] == i, f"{tag} frame {i}: seq {hdr['seq']}")
    ok &= check("roles" not in hdr and "cands" not in hdr, f"{tag} frame {i}: roles or cands present")
    ok &= check(struct.unpack("<I", hdr["ids"])[0] == i,
                f"{tag} frame {i}: ids {struct.unpack('<I', hdr['ids'])}")
    ok &= check(t_lo <= hdr["ts"] <= t_hi,
                f"{tag} frame {i}: ts {hdr['ts']} outside the run [{t_lo}, {t_hi}]")
    ok &= check(len(payload) == 4 * dim, f"{tag} frame {i}: payload of {len(payload)} bytes")
    return ok


def test_producer(tmp):
    dim = 784

    # 20 random rows
    t_lo = time.time_ns()
    msgs = run_producer(f"ipc://{tmp}/in0", ["--limit", "20", "--random", "--dim", str(dim)], 20)
    t_hi = time.time_ns()
    check(len(msgs) == 20, f"random: {len(msgs)} messages, expected 20")
    for i, m in enumerate(msgs):
        try:
            hdr, order, payload = decode(m)
        except Bad as e:
            check(False, f"random frame {i}: rejected: {e}")
            continue
        if check_data_frame("random", hdr, order, payload, i, t_lo, t_hi, dim):
            x = floats(payload)
            check(hdr["labels"] == b"\xff", f"random frame {i}: labels {hdr['labels']!r}, expected 255")
            check(all(0.0 <= v < 1.0 for v in x), f"random frame {i}: a value outside [0, 1)")
    print(f"selftest: producer --random: {len(msgs)} frames decoded")

    # 5 good rows and 3 malformed messages
    t_lo = time.time_ns()
    msgs = run_producer(f"ipc://{tmp}/in1", ["--limit", "5", "--random", "--dim", str(dim), "--bad", "3"], 8)
    t_hi = time.time_ns()
    check(len(msgs) == 8, f"--bad 3: {len(msgs)} messages, expected 8")
    good, reasons = 0, []
    for m in msgs:
        try:
            hdr, order, payload = decode(m)
        except Bad as e:
            reasons.append(str(e))
            continue
        if hdr["cols"] != dim:
            reasons.append(f"cols {hdr['cols']}, expected {dim}")  # what a receiver's width check says
            continue
        check_data_frame("--bad", hdr, order, payload, good, t_lo, t_hi, dim)
        good += 1
    check(good == 5, f"--bad 3: {good} good frames, expected 5")
    want = ["the header is not a MessagePack map", "protocol version 1, expected 2",
            f"cols {dim + 1}, expected {dim}"]
    check(reasons == want, f"--bad 3: rejected {reasons}, expected {want}")
    print(f"selftest: producer --bad 3: {good} good frames, rejected: {'; '.join(reasons)}")

    # MNIST, when its files are here
    img = os.path.join(MNIST, "train-images-idx3-ubyte")
    lab = os.path.join(MNIST, "train-labels-idx1-ubyte")
    if not (os.path.exists(img) and os.path.exists(lab)):
        print(f"selftest: no MNIST in {MNIST}: its run is skipped")
        return
    with open(lab, "rb") as f:
        labels = f.read(8 + 5)[8:]
    with open(img, "rb") as f:
        pixels = f.read(16 + 5 * dim)[16:]
    t_lo = time.time_ns()
    msgs = run_producer(f"ipc://{tmp}/in2", ["--limit", "5", "--data", MNIST], 5)
    t_hi = time.time_ns()
    check(len(msgs) == 5, f"mnist: {len(msgs)} messages, expected 5")
    for i, m in enumerate(msgs):
        try:
            hdr, order, payload = decode(m)
        except Bad as e:
            check(False, f"mnist frame {i}: rejected: {e}")
            continue
        if check_data_frame("mnist", hdr, order, payload, i, t_lo, t_hi, dim):
            check(hdr["labels"][0] == labels[i],
                  f"mnist frame {i}: label {hdr['labels'][0]}, the file says {labels[i]}")
            x = floats(payload)
            want_x = [p / 255.0 for p in pixels[i * dim:(i + 1) * dim]]
            check(all(abs(u - v) < 1e-6 for u, v in zip(x, want_x)),
                  f"mnist frame {i}: pixels differ from the file's / 255")
    print(f"selftest: producer from MNIST: {len(msgs)} frames, labels {list(labels)}")


# --- 2. the subscriber -----------------------------------------------------

def prediction(k):
    """The k-th published message: every key of the format, and one extra."""
    if k % 3 == 2:  # a readout without softmax
        probs, pred = [], -1
    else:
        probs = [0.0] * 10
        pred = k % 10
        probs[pred] = 0.75
        probs[(pred + 1) % 10] = 0.25
    return {"v": 1, "index": k, "ts": 1_700_000_000_000_000_000 + k, "pred": pred,
            "probs": probs, "goodness": 1.5 + k, "label": (k % 10) if k % 2 == 0 else -1,
            "latency_us": 100.25 + k, "extra_key": {"ignored": [1, 2, 3]}}


def run_subscriber(endpoint, args, want_lines):
    """Runs subscriber.py against a PUB socket bound at endpoint, publishing
    until it has printed want_lines lines and exited, or 10 s have passed.
    Returns (its stdout lines, exit status)."""
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(endpoint)
    cmd = [sys.executable, SUBSCRIBER, "--connect", endpoint, "--quiet"] + args
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    k = 0
    deadline = time.monotonic() + 10
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            pub.send(msgpack.packb(prediction(k), use_bin_type=True))
            k += 1
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
        pub.close()
    lines = out.decode().splitlines()
    check(proc.returncode == 0, f"subscriber {' '.join(args)}: exit status {proc.returncode}: "
          f"{err.decode().strip()}")
    check(len(lines) == want_lines, f"subscriber {' '.join(args)}: {len(lines)} lines, "
          f"expected {want_lines}")
    return lines


def test_subscriber(tmp):
    lines = run_subscriber(f"ipc://{tmp}/pred0", ["--count", "5", "--json"], 5)
    got = []
    for s in lines:
        try:
            m = json.loads(s)
        except ValueError:
            check(False, f"subscriber --json: not JSON: {s!r}")
            continue
        if not check(isinstance(m, dict) and isinstance(m.get("index"), int),
                     f"subscriber --json: no index in {s!r}"):
            continue
        want = prediction(m["index"])
        del want["extra_key"]
        check(m == want, f"subscriber --json: printed {m}, published {want}")
        check(list(m) == ["v", "index", "ts", "pred", "probs", "goodness", "label", "latency_us"],
              f"subscriber --json: keys {list(m)}")
        got.append(m["index"])
    check(got == list(range(got[0], got[0] + len(got))) if got else False,
          f"subscriber --json: indexes {got} do not follow one another")
    print(f"selftest: subscriber --count 5 --json: indexes {got}")

    lines = run_subscriber(f"ipc://{tmp}/pred1", ["--count", "2"], 2)
    for s in lines:
        f = dict(kv.split("=", 1) for kv in s.split() if "=" in kv)
        if not check("index" in f, f"subscriber: no index= in {s!r}"):
            continue
        want = prediction(int(f["index"]))
        check(int(f["pred"]) == want["pred"] and int(f["label"]) == want["label"]
              and math.isclose(float(f["goodness"]), want["goodness"])
              and math.isclose(float(f["latency_us"]), want["latency_us"], abs_tol=0.06),
              f"subscriber: printed {s!r} for {want}")
    print(f"selftest: subscriber --count 2: {lines}")


def main():
    with tempfile.TemporaryDirectory(prefix="ffs-selftest-") as tmp:
        try:
            test_producer(tmp)
            test_subscriber(tmp)
        finally:
            zmq.Context.instance().term()
    if failures:
        for f in failures:
            print(f"selftest: FAIL: {f}", file=sys.stderr)
        return 1
    print("selftest: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
