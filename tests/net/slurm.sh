#!/usr/bin/env bash
# tests/net/slurm.sh: a one-node Slurm cluster for tests, everything (config,
# state, spool, logs, pid files) under one directory. Starts munged when none
# runs, then slurmctld and slurmd as root on loopback, on ports of their own
# (not a system Slurm's 6817/6818). Needs root and the slurm-wlm, munge packages.
set -euo pipefail

# Usage:
#   eval "$(tests/net/slurm.sh up DIR [CPUS])"  start; prints export SLURM_CONF=DIR/slurm.conf
#   tests/net/slurm.sh down DIR                stop (no error when already stopped)
# CPUS: the CPUs the node declares, the machine's count by default. More than
# the machine has works: SlurmdParameters=config_overrides keeps slurmctld from
# setting the node INVAL ("Low socket*core*thread count, Low CPUs"), so CPUS=8
# on a 2-CPU machine runs 8 one-CPU tasks with no extra flag.
# up takes about 1 s, down 2-4 s (slurmctld saves its state on the way out;
# running jobs are cancelled first). Ports: the first free pair from 16817 on,
# so two DIRs can be up at once. munged is shared: down stops it only if its
# own up started it.
#
# More tasks than the node's CPUs in one step: --overcommit (-O) on the
# allocation. Tried on a 2-CPU node, 6 tasks:
#   srun -O -n 6 hostname                           (its own allocation)
#   salloc -n 6 -O srun -n 6 hostname
#   salloc -n 6 -O bash -c 'srun -n 6 --multi-prog tasks.conf'
#   sbatch --wait -n 6 -O job.sh                    (job.sh: srun --multi-prog tasks.conf)
# All tasks of a step start at once (6 x sleep 1 took 1 s). Inside the
# allocation srun needs no -O of its own (salloc/sbatch set SLURM_OVERCOMMIT=1;
# -O there is harmless) and may even start more tasks than the allocation's -n.
# Pitfalls:
# - Without -O, asking for more CPUs than the node has is not refused: the job
#   pends for ever (reason PartitionConfig or Resources). --immediate=S makes
#   salloc give up after S seconds instead.
# - An -O allocation holds one CPU: a second step started while one runs waits
#   ("step creation temporarily disabled") unless each srun has --overlap.
# - sbatch --wait polls: it returns about 2 s after the job, with its exit status.
# - The logs carry harmless "mpi/pmix_v4 ... can not load PMIx library" errors.
# A multi-prog file has lines "RANKS PROGRAM ARGS" (RANKS: 0, 1-4, 0,5 or *);
# %t becomes the task's rank, %o its offset in the line's range. Words split at
# blanks; '...' makes one word (no %t inside), "..." does not (the quotes stay),
# and nothing is expanded like a shell would ($VAR, ~): use sh -c '...' for that.
#   0 ./stage source --rank=%t
#   1-4 ./stage layer --rank=%t
#   5 sh -c 'exec ./stage sink --rank=$SLURM_PROCID'
# Each task sees SLURM_PROCID (its rank), SLURM_LOCALID, SLURM_NTASKS,
# SLURM_STEP_ID and SLURM_JOB_ID.

state() { echo "$dir/$1"; }
die() { echo "slurm.sh: $*" >&2; exit 1; }
say() { echo "slurm.sh: $*" >&2; }

# pid of a daemon from its pid file, if that process is still the daemon
live_pid() {
  local file=$1 name=$2 pid
  [ -s "$file" ] || return 1
  pid=$(cat "$file")
  grep -qs "$name" "/proc/$pid/cmdline" || return 1
  echo "$pid"
}

# stops the daemons named (by their pid files under DIR) together, waiting up
# to 10 s before SIGKILL
stop_daemons() {
  local name pid pids=() left
  for name in "$@"; do
    pid=$(live_pid "$(state "$name.pid")" "$name") && kill "$pid" && pids+=("$pid")
  done
  for _ in $(seq 1 100); do
    left=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${left[@]}"; do
    say "pid $pid ignored SIGTERM for 10 s, killing it"
    kill -9 "$pid" 2>/dev/null || true
  done
  for name in "$@"; do rm -f "$(state "$name.pid")"; done
}

munge_works() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  if munge_works; then
    say "munged already running, using it"
    return 0
  fi
  install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
  install -d -o munge -g munge -m 0711 /var/lib/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  # munged forks into the background and writes /run/munge/munged.pid
  runuser -u munge -- munged
  for _ in $(seq 1 50); do munge_works && break; sleep 0.1; done
  munge_works || die "munged does not answer (see /var/log/munge/munged.log)"
  # so that down stops it, and only it
  cp /run/munge/munged.pid "$(state munged.pid)"
}

# the first two free TCP ports from 16817 on, for slurmctld and slurmd
free_ports() {
  local port=16817 taken
  taken=$(ss -Htan | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
  while grep -qx "$port" <<<"$taken" || grep -qx "$((port + 1))" <<<"$taken"; do
    port=$((port + 2))
  done
  echo "$port $((port + 1))"
}

write_conf() {
  local cpus=$1 node ctld_port slurmd_port
  node=$(hostname -s)
  read -r ctld_port slurmd_port < <(free_ports)
  cat >"$(state slurm.conf)" <<EOF
# written by tests/net/slurm.sh up $dir
ClusterName=ffstest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

node_state() { SLURM_CONF="$(state slurm.conf)" sinfo -h -N -o %t 2>/dev/null | head -1; }

cmd_up() {
  local cpus=${1:-$(nproc)} st ctld slurmd
  [[ "$cpus" =~ ^[1-9][0-9]*$ ]] || die "CPUS '$cpus' is not a count"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  live_pid "$(state slurmctld.pid)" slurmctld >/dev/null &&
    die "a slurmctld of $dir runs already (slurm.sh down $dir first)"
  mkdir -p "$(state state)" "$(state spool)" "$(state log)"
  start_munge
  write_conf "$cpus"
  rm -f "$(state log)"/*
  # -D: in the foreground (of this background job), the log also on stderr;
  # -c: a fresh start, no jobs or node state (a drained node, say) from an
  # earlier up in DIR; setsid: out of the caller's process group, so that a
  # ^C there leaves them be
  setsid slurmctld -D -c -f "$(state slurm.conf)" </dev/null >"$(state log/slurmctld.out)" 2>&1 &
  ctld=$!
  setsid slurmd -D -f "$(state slurm.conf)" </dev/null >"$(state log/slurmd.out)" 2>&1 &
  slurmd=$!
  for _ in $(seq 1 600); do
    st=$(node_state)
    # idle: up; inval, drain: refused, waiting will not help; nor when a
    # daemon is gone (a port taken, say)
    [[ "$st" =~ ^(idle|inval|drain|drng)$ ]] && break
    { kill -0 "$ctld" && kill -0 "$slurmd"; } 2>/dev/null || { st="a daemon exited"; break; }
    sleep 0.1
  done
  if [ "$st" != idle ]; then
    say "node not idle (state '${st:-none}' after ${SECONDS}s); last log lines:"
    tail -n 5 "$(state log/slurmctld.out)" "$(state log/slurmd.out)" >&2 || true
    cmd_down
    exit 1
  fi
  echo "export SLURM_CONF=$(state slurm.conf)"
}

cmd_down() {
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  local conf
  conf=$(state slurm.conf)
  # jobs first, so that no slurmstepd outlives its slurmd
  if live_pid "$(state slurmctld.pid)" slurmctld >/dev/null; then
    SLURM_CONF=$conf scancel --full --quiet --partition=test 2>/dev/null || true
    for _ in $(seq 1 50); do
      [ -z "$(SLURM_CONF=$conf squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  stop_daemons slurmd slurmctld
  stop_daemons munged   # only there when up started it
}

[ $# -ge 2 ] || { sed -n '/^# Usage:/,/^# on a 2-CPU machine/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "needs root"
cmd=$1 dir=$2
case "$cmd:$#" in
  up:2 | up:3) cmd_up "${3:-}" ;;
  down:2) cmd_down ;;
  *) die "unknown command '$*' (up DIR [CPUS] | down DIR)" ;;
esac
