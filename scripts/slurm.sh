#!/usr/bin/env bash
# A one-node Slurm on this machine, for the MPI tests' Slurm cases and for trying the README's
# Slurm commands: munged, slurmctld and slurmd, each in the foreground of its own session, with
# their configuration, keys, sockets, spool, state and logs in one folder ($SLURM_STATE).
# Nothing is written to /etc, and nothing of the system's own munge or Slurm is touched.
#
#   scripts/slurm.sh up            start the daemons (refused if the folder holds a live one)
#   scripts/slurm.sh down          stop them (every job first), and remove the folder
#   scripts/slurm.sh run CMD...    up, CMD with SLURM_CONF set, always down (also on a signal)
#   scripts/slurm.sh env           the line to eval in a shell for `srun` to find this Slurm
#   scripts/slurm.sh status        what is running
#
# Needs root (slurmd runs jobs as their users) and Debian's slurm-wlm and munge. The node
# declares $SLURM_CPUS CPUs (default 8, whatever this machine has), so a 3- or 5-rank job fits a
# 2-core machine, as `mpirun --oversubscribe` does. MpiDefault is none: jobs say `--mpi=pmix`,
# the plugin Debian's Open MPI is built against (its pmi2 is not built in: "OMPI was not built
# with SLURM's PMI support"). KillWait stays at Slurm's 30 s, so a job that ends at `scancel`
# within a second has ended by its own hand, not by Slurm's SIGKILL.
#
# Variables: SLURM_STATE (default /run/ipcmap-slurm), SLURM_PORT (slurmctld; slurmd takes the
# next; default 46817), SLURM_CPUS.
set -euo pipefail

STATE=${SLURM_STATE:-/run/ipcmap-slurm}
PORT=${SLURM_PORT:-46817}
CPUS=${SLURM_CPUS:-8}

die() { echo "slurm.sh: $*" >&2; exit 1; }

[[ $STATE =~ ^/[A-Za-z0-9._/-]{1,200}$ ]] ||
  die "SLURM_STATE '$STATE': an absolute path of letters, digits, '.', '_', '-' and '/'"
[[ $PORT =~ ^[0-9]{4,5}$ ]] && ((PORT >= 1024 && PORT < 65535)) ||
  die "SLURM_PORT '$PORT': 1024-65534"
[[ $CPUS =~ ^[1-9][0-9]{0,2}$ ]] || die "SLURM_CPUS '$CPUS': 1-999"

need() {
  [ "$(id -u)" = 0 ] || die "needs root (slurmd starts jobs as their users)"
  for b in munged slurmctld slurmd srun; do
    command -v "$b" >/dev/null || die "needs $b (apt-get install slurm-wlm munge)"
  done
}

alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

# Starts "$@" in the background, in a session of its own, logging to $STATE/$name.log.
start() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

conf() {
  local host=$1
  cat <<EOF
# Written by ipcmap scripts/slurm.sh: a one-node cluster whose files all live in $STATE.
ClusterName=ipcmap
SlurmctldHost=$host
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge.socket
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.own.pid
SlurmdPidFile=$STATE/slurmd.own.pid
SlurmctldLogFile=$STATE/slurmctld.daemon.log
SlurmdLogFile=$STATE/slurmd.daemon.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
KillWait=30
InactiveLimit=0
SlurmdTimeout=60
NodeName=$host CPUs=$CPUS State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
}

up() {
  need
  if alive slurmctld || alive slurmd || alive munged; then
    die "$STATE holds a running Slurm; 'scripts/slurm.sh down' first"
  fi
  rm -rf "$STATE"
  mkdir -p "$STATE/ctld" "$STATE/spool"
  chmod 700 "$STATE"
  local host
  host=$(hostname -s)
  conf "$host" >"$STATE/slurm.conf"
  # A fresh key, readable by root only, as munged requires.
  head -c 1024 /dev/urandom >"$STATE/munge.key"
  chmod 400 "$STATE/munge.key"
  start munged munged --foreground --force --key-file="$STATE/munge.key" \
    --socket="$STATE/munge.socket" --pid-file="$STATE/munged.own.pid" \
    --seed-file="$STATE/munge.seed" --log-file="$STATE/munged.daemon.log"
  wait_for "munged" test -S "$STATE/munge.socket"
  start slurmctld slurmctld -D -f "$STATE/slurm.conf"
  start slurmd slurmd -D -f "$STATE/slurm.conf"
  export SLURM_CONF="$STATE/slurm.conf"
  # The node is ready when it takes a job.
  wait_for "the node to take a job" timeout 10 srun -N1 -n1 -t 1 true
}

# Waits up to 60 s for "$@" to succeed; says what it waited for, with the logs, if it never did.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 120); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    for d in munged slurmctld slurmd; do
      if [ -f "$STATE/$d.pid" ] && ! alive "$d"; then
        tail -n 20 "$STATE/$d.log" "$STATE/$d.daemon.log" 2>/dev/null >&2 || true
        die "$d exited while waiting for $what"
      fi
    done
    sleep 0.5
  done
  tail -n 20 "$STATE"/*.log >&2 || true
  die "gave up after 60 s waiting for $what"
}

down() {
  [ -d "$STATE" ] || return 0
  [ -f "$STATE/slurm.conf" ] || die "$STATE was not made by this script; not touching it"
  if alive slurmctld; then
    SLURM_CONF="$STATE/slurm.conf" scancel --full --quiet --partition ci 2>/dev/null || true
  fi
  for d in slurmd slurmctld munged; do
    if alive "$d"; then kill -TERM "$(cat "$STATE/$d.pid")" 2>/dev/null || true; fi
  done
  for _ in $(seq 50); do
    alive slurmd || alive slurmctld || alive munged || break
    sleep 0.1
  done
  for d in slurmd slurmctld munged; do
    if alive "$d"; then kill -KILL "$(cat "$STATE/$d.pid")" 2>/dev/null || true; fi
  done
  rm -rf "$STATE"
}

run() {
  [ $# -gt 0 ] || die "run needs a command"
  trap down EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  up
  local child rc=0
  SLURM_CONF="$STATE/slurm.conf" "$@" &
  child=$!
  trap 'kill -TERM "$child" 2>/dev/null; exit 130' INT
  trap 'kill -TERM "$child" 2>/dev/null; exit 143' TERM
  trap 'kill -TERM "$child" 2>/dev/null; exit 129' HUP
  wait "$child" || rc=$?
  return "$rc"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  run) shift; run "$@" ;;
  env) echo "export SLURM_CONF=$STATE/slurm.conf" ;;
  status)
    for d in munged slurmctld slurmd; do
      if alive "$d"; then echo "$d: running (pid $(cat "$STATE/$d.pid"))"; else echo "$d: not running"; fi
    done
    ;;
  *) die "usage: slurm.sh up|down|run CMD...|env|status" ;;
esac
