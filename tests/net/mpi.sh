#!/usr/bin/env bash
# tests/net/mpi.sh: checks that Open MPI's mpirun starts an MPMD job of plain
# (non-MPI) programs on this machine, each seeing its rank, with all of its own
# traffic on loopback. Notes on what was found are below.
#   tests/net/mpi.sh check    exits 0 when ranks 0, 1 and 2 each reported their rank
set -euo pipefail

# Found with Open MPI 4.1.4 (Debian 12 openmpi-bin), as root, on a 2-CPU VM:
# - Works as: mpirun --allow-run-as-root --oversubscribe --bind-to none \
#     -np 1 hostname : -np 1 hostname : -np 1 env
#   --allow-run-as-root is needed as root (or OMPI_ALLOW_RUN_AS_ROOT=1 and
#   OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1); --oversubscribe for more processes than
#   CPUs; --bind-to none, else each rank is pinned to a core of its own.
# - Each process sees OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE,
#   OMPI_COMM_WORLD_LOCAL_RANK, OMPI_COMM_WORLD_LOCAL_SIZE,
#   OMPI_COMM_WORLD_NODE_RANK, OMPI_UNIVERSE_SIZE, OMPI_MCA_orte_app_num (its
#   MPMD part, from 0), OMPI_APP_CTX_NUM_PROCS ("1 1 1"), OMPI_FIRST_RANKS,
#   OMPI_COMMAND, PMIX_RANK and PMIX_NAMESPACE. No PMI_RANK or PMI_SIZE (those
#   are MPICH's and Slurm's pmi2): read OMPI_COMM_WORLD_RANK.
# - Programs that are not MPI programs run without any warning.
# - No --mca btl ^openib needed: Debian's /etc/openmpi/openmpi-mca-params.conf
#   already has btl = ^uct,openib,ofi and pml = ^ucx, and an MPI program
#   (mpi4py allreduce) printed no warning either.
# - By default mpirun's own channel (oob) listens on every interface and
#   advertises the machine's external address to its processes; with
#   --mca oob_tcp_if_include lo (and btl_tcp_if_include lo for MPI programs)
#   everything stays on 127.0.0.1. It also runs inside a network namespace of
#   tests/net/hosts.sh (ip netns exec PREFIXk mpirun ...), where only lo and
#   eth0 exist.
# - Start-up: 35-85 ms for the 3-process line on an idle machine, 350 ms for
#   a 2-rank mpi4py job; with the 2 CPUs busy with other work, single runs took
#   up to 5 s, so a test should allow 30 s or more.
# - One rank exiting non-zero makes mpirun kill the others and exit with that
#   status, after a banner on stderr; ranks exiting 0 are simply waited for.
# - Do not mix an MPI program with non-MPI ones in one MPMD line: the MPI
#   ranks wait in MPI_Init for the others for ever (seen: hostname : mpi4py).

ranks() {
  # two plain programs that say their rank, and env, whose line carries it
  timeout 60 mpirun --allow-run-as-root --oversubscribe --bind-to none \
    --mca oob_tcp_if_include lo --mca btl_tcp_if_include lo \
    -np 1 sh -c 'echo "OMPI_COMM_WORLD_RANK=$OMPI_COMM_WORLD_RANK on $(hostname)"' : \
    -np 1 sh -c 'echo "OMPI_COMM_WORLD_RANK=$OMPI_COMM_WORLD_RANK on $(hostname)"' : \
    -np 1 env |
    sed -n 's/^OMPI_COMM_WORLD_RANK=\([0-9]*\).*/\1/p' | sort -n | tr '\n' ' '
}

cmd_check() {
  local got t0=$SECONDS
  got=$(ranks) || { echo "mpi.sh: FAIL: mpirun failed or timed out (60 s)" >&2; exit 1; }
  if [ "$got" != "0 1 2 " ]; then
    echo "mpi.sh: FAIL: ranks reported: '${got}', wanted '0 1 2'" >&2
    exit 1
  fi
  echo "mpi.sh: ok, ranks 0 1 2 reported ($((SECONDS - t0)) s)"
}

case "${1:-}" in
  check) cmd_check ;;
  *) sed -n '5p' "$0" | sed 's/^#  *//' >&2; exit 2 ;;
esac
