#!/usr/bin/python3
"""tests/net/intruder.py: a peer that must not get in. Connects a PUSH socket
to a stage's tcp input and sends frames for a while, either in plaintext or
speaking CURVE with a key pair of its own (it knows the run's public server
key, as anyone may). A stage that accepted it would count its frames (as bad
frames: they are garbage); tests check that none was, and that the refusals
were logged.

usage: intruder.py ENDPOINT plaintext|wrongkey [RUN_PUB_FILE] [SECONDS]
"""
import sys
import time

import zmq


def main():
    if len(sys.argv) < 3 or sys.argv[2] not in ("plaintext", "wrongkey"):
        print(__doc__, file=sys.stderr)
        return 2
    endpoint, mode = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 10)
    if mode == "wrongkey":
        server_pub = None
        with open(sys.argv[3]) as f:
            for line in f:
                if line.startswith("public-key"):
                    server_pub = line.split("=", 1)[1].strip().encode()
        if not server_pub:
            print("intruder: no public-key line in %s" % sys.argv[3], file=sys.stderr)
            return 2
        pub, sec = zmq.curve_keypair()
        sock.curve_serverkey = server_pub
        sock.curve_publickey = pub
        sock.curve_secretkey = sec
    sock.connect(endpoint)
    sent, end = 0, time.time() + seconds
    while time.time() < end:
        try:
            sock.send(b"\x85garbage-that-is-not-a-frame" * 8, zmq.NOBLOCK)
            sent += 1
        except zmq.Again:
            pass  # not connected: the handshake was refused
        time.sleep(0.05)
    print("intruder %s: %d frames queued (none can pass a refused handshake)" % (mode, sent))
    sock.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
