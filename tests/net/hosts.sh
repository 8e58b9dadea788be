#!/usr/bin/env bash
# tests/net/hosts.sh: acts out N hosts on one machine for tests and benchmarks:
# network namespaces PREFIX1..PREFIXN, each with an eth0 (10.200.0.K/24) wired
# to a Linux bridge in the namespace PREFIXsw. Also delays, cuts and mends
# links. Nothing is added to the machine's own namespace. Needs root.
set -euo pipefail

# Usage:
#   hosts.sh up PREFIX N [SUBNET]  create PREFIX1..PREFIXN and PREFIXsw; prints
#                                  "NAME ADDRESS" per host, e.g. "ffa1 10.200.0.1"
#   hosts.sh list PREFIX           the same lines again, for the hosts that are up
#   hosts.sh down PREFIX           remove all of it (no error when already gone)
#   hosts.sh delay PREFIX MS       delay every packet between hosts by MS ms each
#                                  way (round trip 2*MS); 0 removes the delay
#   hosts.sh cut PREFIX K          host K's link down at both ends: nothing passes
#   hosts.sh mend PREFIX K         host K's link up again
# Run a program on host K with `ip netns exec PREFIXK PROGRAM...`; that nests, so
# a launcher on host 1 may itself run `ip netns exec PREFIX2 ...`.
#
# PREFIX: 1-8 lower-case letters or digits ending in a letter (so PREFIX1 cannot
# be another prefix's host), which keeps the bridge port names PREFIX-pK within
# the kernel's 15 characters for an interface name. N: 1-250.
# SUBNET: the first three octets of the hosts' addresses, 10.200.0 by default.
# Two prefixes are two separate networks (a bridge each, nothing routed between
# them or to the machine), so both may use 10.200.0 without clashing; give a
# second prefix its own SUBNET (10.200.1, ...) only where the addresses should
# tell the networks apart, in logs for instance.
#
# cut: from the cut host itself new connections fail at once ("Network is
# unreachable": eth0 down takes its route along); from the others they time
# out. A TCP connection across a short cut (2 s tried) carries on after mend,
# nothing lost.
#
# delay: tc netem on eth0 where the kernel has it. Kernels built without netem
# (the Firecracker VMs this project runs on) get a stand-in: an iptables
# NFQUEUE rule on the way in through eth0 and tests/net/delayq.py in the
# host's namespace, which lets each packet go MS ms after it arrived (needs
# the iptables package). It holds packets on the receiving side because a
# packet held on the sending side still counts against its TCP socket (TCP
# small queues), which then sends a few packets per delay: 10 Mbit/s instead
# of hundreds of MB/s. Measure it with `ping -U`: plain ping takes the reply's
# time when it reaches eth0, before it is held, so it shows MS, not 2*MS.
# Pid files and logs of the stand-in are under /run/ffs-hosts/PREFIX.

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rundir=/run/ffs-hosts

die() { echo "hosts.sh: $*" >&2; exit 1; }

check_prefix() {
  [[ "$1" =~ ^[a-z0-9]{0,7}[a-z]$ ]] ||
    die "PREFIX '$1': 1-8 lower-case letters or digits, ending in a letter"
}

ns_exists() { [ -e "/run/netns/$1" ]; }

# the host namespaces of PREFIX that exist now, in order: PREFIX1 PREFIX2 ...
hosts_of() {
  ip netns list | awk '{print $1}' | grep -E "^$1[0-9]+\$" | sort -V || true
}

host_ns() {
  [[ "$2" =~ ^[0-9]+$ ]] || die "K '$2' is not a number"
  ns_exists "$1$2" || die "no host $1$2 (hosts.sh up $1 N first)"
  echo "$1$2"
}

cmd_list() {
  local prefix=$1 ns addr
  for ns in $(hosts_of "$prefix"); do
    addr=$(ip -n "$ns" -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]}')
    echo "$ns $addr"
  done
}

cmd_up() {
  local prefix=$1 n=$2 subnet=${3:-10.200.0} sw="$1sw" k ns port
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 250 ] || die "N '$n': 1-250"
  [[ "$subnet" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "SUBNET '$subnet': like 10.200.0"
  ns_exists "$sw" && die "$prefix is already up (hosts.sh down $prefix first)"
  [ -z "$(hosts_of "$prefix")" ] || die "namespaces $prefix<K> are left over (hosts.sh down $prefix)"
  # a failure half way leaves nothing behind
  trap 'cmd_down "$prefix"' EXIT
  ip netns add "$sw"
  ip -n "$sw" link set lo up
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  for k in $(seq 1 "$n"); do
    ns="$prefix$k"
    port="$prefix-p$k"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # both ends are made where they live, so no name is ever taken in the
    # machine's own namespace
    ip -n "$sw" link add "$port" type veth peer name eth0 netns "$ns"
    ip -n "$sw" link set "$port" master br0 up
    ip -n "$ns" addr add "$subnet.$k/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
  trap - EXIT
  cmd_list "$prefix"
}

# stops the delay stand-in of host namespace $2 (if any) and takes its rule out
stop_delayq() {
  local prefix=$1 ns=$2 pidfile="$rundir/$1/delayq.$2.pid" pid
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    # only if that pid is still delayq.py (it may have died, its pid reused)
    grep -qs delayq.py "/proc/$pid/cmdline" && kill "$pid"
    # it lets every packet it holds go before it exits
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile"
  fi
  if ns_exists "$ns" && command -v iptables >/dev/null; then
    ip netns exec "$ns" iptables -t mangle -F PREROUTING 2>/dev/null || true
  fi
}

cmd_down() {
  local prefix=$1 ns pids
  for ns in $(hosts_of "$prefix"); do
    stop_delayq "$prefix" "$ns"
    pids=$(ip netns pids "$ns" | tr '\n' ' ')
    [ -z "$pids" ] || echo "hosts.sh: processes still in $ns: $pids(left running)" >&2
    ip netns del "$ns"
  done
  ns_exists "$prefix"sw && ip netns del "$prefix"sw
  rm -rf "${rundir:?}/$prefix"
}

has_netem() {
  tc -n "$1" qdisc replace dev eth0 root netem delay 0ms 2>/dev/null &&
    tc -n "$1" qdisc del dev eth0 root 2>/dev/null
}

cmd_delay() {
  local prefix=$1 ms=$2 ns hosts
  [[ "$ms" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "MS '$ms' is not a number of milliseconds"
  hosts=$(hosts_of "$prefix")
  [ -n "$hosts" ] || die "no hosts $prefix<K> (hosts.sh up $prefix N first)"
  for ns in $hosts; do
    # whichever way an earlier call took
    tc -n "$ns" qdisc del dev eth0 root 2>/dev/null || true
    stop_delayq "$prefix" "$ns"
    [ "$ms" = 0 ] && continue
    if has_netem "$ns"; then
      tc -n "$ns" qdisc replace dev eth0 root netem delay "${ms}ms"
    else
      start_delayq "$prefix" "$ns" "$ms"
    fi
  done
}

start_delayq() {
  local prefix=$1 ns=$2 ms=$3 pidfile="$rundir/$1/delayq.$2.pid"
  command -v iptables >/dev/null ||
    die "this kernel has no netem; the stand-in needs iptables (apt-get install iptables)"
  mkdir -p "$rundir/$prefix"
  # --queue-bypass: should delayq.py be gone, packets pass undelayed, not dropped
  ip netns exec "$ns" iptables -t mangle -A PREROUTING -i eth0 \
    -j NFQUEUE --queue-num 0 --queue-bypass
  ip netns exec "$ns" setsid /usr/bin/python3 "$here/delayq.py" 0 "$ms" \
    </dev/null >"$rundir/$prefix/delayq.$ns.log" 2>&1 &
  echo $! >"$pidfile"
  # ready once it is bound to the queue: it says so in its log
  for _ in $(seq 1 50); do
    grep -q '^delayq: bound' "$rundir/$prefix/delayq.$ns.log" 2>/dev/null && return 0
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 0.1
  done
  die "delayq.py in $ns did not start: $(tail -3 "$rundir/$prefix/delayq.$ns.log")"
}

# host K's link, both ends: eth0 in the host and its port on the bridge
cmd_link() {
  local prefix=$1 k=$2 state=$3 ns
  ns=$(host_ns "$prefix" "$k")
  ip -n "$ns" link set eth0 "$state"
  ip -n "$prefix"sw link set "$prefix-p$k" "$state"
}

usage() { sed -n '/^# Usage:/,/^# a launcher/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
cmd=$1 prefix=$2
check_prefix "$prefix"
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
case "$cmd:$#" in
  up:3 | up:4) cmd_up "$prefix" "$3" "${4:-}" ;;
  list:2) cmd_list "$prefix" ;;
  down:2) cmd_down "$prefix" ;;
  delay:3) cmd_delay "$prefix" "$3" ;;
  cut:3) cmd_link "$prefix" "$3" down ;;
  mend:3) cmd_link "$prefix" "$3" up ;;
  *) usage ;;
esac
