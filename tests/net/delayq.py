#!/usr/bin/python3
# tests/net/delayq.py: a fixed delay for kernels without tc netem. Binds to an
# NFQUEUE queue of the network namespace it runs in and lets each packet go
# MS ms after it arrived, in arrival order. hosts.sh delay starts it next to
# the rule `iptables -t mangle -A PREROUTING -i eth0 -j NFQUEUE --queue-num Q`.
#   delayq.py Q MS     (root; SIGTERM lets the held packets go, then exits)
# Speaks nfnetlink_queue directly (no libnetfilter_queue binding needed): the
# kernel sends each packet's id only (copy mode meta), and one "verdict batch"
# message accepts every packet up to an id, which a FIFO with one delay needs.
import collections
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_CONFIG, NFQNL_MSG_VERDICT_BATCH = 0, 2, 3
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQA_CFG_MASK, NFQA_CFG_FLAGS = 4, 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_GSO = 4  # whole GSO packets, not their segments
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NF_ACCEPT = 1
QUEUE_MAXLEN = 65536  # packets held at once; more are dropped


def attr(kind, payload):
    pad = b"\0" * (-len(payload) % 4)
    return struct.pack("=HH", 4 + len(payload), kind) + payload + pad


def message(msg, queue, attrs, flags=NLM_F_REQUEST):
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    kind = (NFNL_SUBSYS_QUEUE << 8) | msg
    return struct.pack("=IHHII", 16 + len(body), kind, flags, 0, 0) + body


def configure(sock, queue, attrs):
    """Sends a config message and raises if the kernel refuses it."""
    sock.send(message(NFQNL_MSG_CONFIG, queue, attrs, NLM_F_REQUEST | NLM_F_ACK))
    while True:  # the ack, past any packet that came first
        reply, off = sock.recv(65536), 0
        while off + 16 <= len(reply):
            length, kind = struct.unpack_from("=IH", reply, off)
            if kind == NLMSG_ERROR:
                err = struct.unpack_from("=i", reply, off + 16)[0]
                if err:
                    raise OSError(-err, "nfqueue config refused")
                return
            off += max(16, (length + 3) & ~3)


def packet_ids(data):
    """The packet ids in one recv's worth of netlink messages."""
    ids, off = [], 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            a = off + 20  # past nlmsghdr and nfgenmsg
            while a + 4 <= off + length:
                alen, akind = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if akind & 0x7FFF == NFQA_PACKET_HDR:
                    ids.append(struct.unpack_from("!I", data, a + 4)[0])
                a += (alen + 3) & ~3
        off += (length + 3) & ~3
    return ids


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: delayq.py QUEUE MS")
    queue, delay = int(sys.argv[1]), float(sys.argv[2]) / 1000.0
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
    sock.bind((0, 0))
    configure(sock, queue, [
        attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)),
        attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)),
        attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", QUEUE_MAXLEN)),
        attr(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_GSO)),
        attr(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_GSO)),
    ])
    print(f"delayq: bound queue {queue}, delay {delay * 1000:g} ms", flush=True)

    held = collections.deque()  # (time to let go, packet id), oldest first
    # a signal wakes select through this pipe (select itself would carry on)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))

    def accept_up_to(pid):
        hdr = attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, pid))
        sock.send(message(NFQNL_MSG_VERDICT_BATCH, queue, [hdr]))

    while not stopping:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else None
        readable, _, _ = select.select([sock, wake_r], [], [], timeout)
        if sock in readable:
            try:
                data = sock.recv(1 << 20)
            except OSError as e:  # ENOBUFS: messages lost; a later batch verdict covers them
                print(f"delayq: {e}", file=sys.stderr, flush=True)
                continue
            due = time.monotonic() + delay
            held.extend((due, pid) for pid in packet_ids(data))
        now, last = time.monotonic(), None
        while held and held[0][0] <= now:
            last = held.popleft()[1]
        if last is not None:
            accept_up_to(last)
    if held:
        accept_up_to(held[-1][1])


if __name__ == "__main__":
    main()
