#!/usr/bin/env bash
# A three-host cluster on one machine, in network namespaces, for MPI jobs that cross a
# network stack: hosts h1, h2, h3 (10.77.0.1-3/24, each its own hostname by `unshare --uts`)
# on a bridge in namespace ipcmap-sw. mpirun starts its remote daemons through `nsexec` (an
# rsh agent that enters a host's namespace instead of ssh).
#
#   scripts/cluster.sh up            make the namespaces (idempotent)
#   scripts/cluster.sh down          remove them, and only them
#   scripts/cluster.sh run CMD...    up, run CMD in h1 with $CLUSTER_MPIRUN set, always down
#   scripts/cluster.sh mpirun ARGS   the mpirun line for the cluster (for use inside `run`)
#   scripts/cluster.sh status        what exists
#
# Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), iproute2 and util-linux. Every namespace it
# makes is marked ($CLUSTER_STATE/made/<name>, default /run/ipcmap-cluster); it refuses to touch a namespace of one
# of these names that is not marked, and never anything else. Traffic stays on the bridge:
# the hosts have no route off 10.77.0.0/24.
#
# Variables: CLUSTER_PREFIX (namespace names, default ipcmap-), CLUSTER_NET (default 10.77.0),
# CLUSTER_SLOTS (slots per host, default "1 2 2").
set -euo pipefail

PREFIX=${CLUSTER_PREFIX:-ipcmap-}
NET=${CLUSTER_NET:-10.77.0}
SLOTS_TEXT=${CLUSTER_SLOTS:-1 2 2}
HOSTS=(h1 h2 h3)

die() { echo "cluster.sh: $*" >&2; exit 1; }

# Every variable is checked before it names anything: a prefix becomes namespace names, file
# names and a line of the generated launcher, so it may hold letters, digits, '.', '_' and '-'
# only (no space, no quote, no '$(...)'); the net is three numbers; the slots one count a host.
[[ $PREFIX =~ ^[A-Za-z0-9._-]{1,24}$ ]] ||
  die "CLUSTER_PREFIX '$PREFIX': 1-24 letters, digits, '.', '_' or '-'"
[[ $NET =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] &&
  ((BASH_REMATCH[1] < 256 && BASH_REMATCH[2] < 256 && BASH_REMATCH[3] < 256)) ||
  die "CLUSTER_NET '$NET': three numbers 0-255, as 10.77.0"
read -r -a SLOTS <<<"$SLOTS_TEXT"
[ "${#SLOTS[@]}" = "${#HOSTS[@]}" ] || die "CLUSTER_SLOTS '$SLOTS_TEXT': one count for each of ${#HOSTS[@]} hosts"
for s in "${SLOTS[@]}"; do
  [[ $s =~ ^[1-9][0-9]?$ ]] || die "CLUSTER_SLOTS '$SLOTS_TEXT': each count 1-99"
done
SW=${PREFIX}sw
STATE=${CLUSTER_STATE:-/run/${PREFIX}cluster}
ns_of() { echo "${PREFIX}$1"; }
exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
marked() { [ -f "$STATE/made/$1" ]; }

# Refuses a namespace that exists but is not ours.
claim() {
  local ns=$1
  if exists "$ns" && ! marked "$ns"; then
    die "namespace $ns exists and was not made by this script; not touching it"
  fi
}

need() {
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
  command -v ip >/dev/null || die "needs iproute2 (ip)"
  command -v unshare >/dev/null || die "needs util-linux (unshare)"
}

mark() {
  mkdir -p "$STATE/made" "/etc/netns/$1"
  echo "made by ipcmap scripts/cluster.sh" >"$STATE/made/$1"
}

up() {
  need
  claim "$SW"
  for h in "${HOSTS[@]}"; do claim "$(ns_of "$h")"; done
  if ! exists "$SW"; then
    ip netns add "$SW"
    mark "$SW"
    ip -n "$SW" link add br0 type bridge
    ip -n "$SW" link set br0 up
    ip -n "$SW" link set lo up
  fi
  local i=0
  for h in "${HOSTS[@]}"; do
    i=$((i + 1))
    local ns
    ns=$(ns_of "$h")
    if exists "$ns"; then continue; fi
    ip netns add "$ns"
    mark "$ns"
    # The host's end is called mhnet in every host; the bridge's end names its host.
    ip link add mhnet netns "$ns" type veth peer name "port-$h" netns "$SW"
    ip -n "$SW" link set "port-$h" master br0 up
    ip -n "$ns" addr add "$NET.$i/24" dev mhnet
    ip -n "$ns" link set mhnet up
    ip -n "$ns" link set lo up
  done
  # Every host knows every other by name (ip netns exec bind-mounts this over /etc/hosts).
  for h in "${HOSTS[@]}"; do
    local ns
    ns=$(ns_of "$h")
    {
      echo "127.0.0.1 localhost"
      local j=0
      for o in "${HOSTS[@]}"; do j=$((j + 1)); echo "$NET.$j $o"; done
    } >"/etc/netns/$ns/hosts"
  done
  mkdir -p "$STATE"
  write_agent >"$STATE/nsexec"
  chmod 755 "$STATE/nsexec"
  local j=0
  : >"$STATE/hosts"
  for h in "${HOSTS[@]}"; do echo "$h slots=${SLOTS[$j]}" >>"$STATE/hosts"; j=$((j + 1)); done
}

# The rsh agent: `nsexec [options] HOST CMD...` runs CMD on HOST, i.e. in its namespace with
# its own hostname, as ssh would on a real cluster.
write_agent() {
  cat <<EOF
#!/bin/sh
while [ \$# -gt 0 ]; do
  case "\$1" in -*) shift ;; *) break ;; esac
done
host=\$1; shift
exec ip netns exec "${PREFIX}\$host" unshare --uts /bin/sh -c 'hostname "\$1"; shift; exec /bin/sh -c "\$*"' x "\$host" "\$@"
EOF
}

down() {
  need
  local refused=0
  for ns in "$SW" $(for h in "${HOSTS[@]}"; do ns_of "$h"; done); do
    if ! exists "$ns"; then
      if marked "$ns"; then rm -rf "/etc/netns/$ns" "$STATE/made/$ns"; fi
      continue
    fi
    if ! marked "$ns"; then
      echo "cluster.sh: namespace $ns was not made by this script; not removing it" >&2
      refused=1
      continue
    fi
    # Processes left in a host (a daemon of a job that died) go with it.
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then kill -9 $pids 2>/dev/null || true; fi
    ip netns del "$ns"
    rm -rf "/etc/netns/$ns" "$STATE/made/$ns"
  done
  [ "$refused" = 0 ] || return 1
  rm -rf "$STATE"
}

# The mpirun line for a job on the cluster, launched from h1.
mpirun_line() {
  echo mpirun --hostfile "$STATE/hosts" --map-by node \
    --mca plm_rsh_agent "$STATE/nsexec" --mca plm_rsh_no_tree_spawn 1 \
    --mca oob_tcp_if_include "$NET.0/24" --mca btl_tcp_if_include "$NET.0/24" \
    --mca pml ob1 --mca btl self,tcp --mca mpi_yield_when_idle 1
}

# Runs "$@" in h1 (as its hostname) with CLUSTER_MPIRUN set; the cluster is always removed.
# The command runs in the background and is waited for, so a signal to this script is acted
# on at once: the command is killed and the cluster (with anything left in its hosts) removed.
run() {
  [ $# -gt 0 ] || die "run needs a command"
  trap down EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  up
  local child
  CLUSTER_MPIRUN=$(mpirun_line) CLUSTER_STATE="$STATE" CLUSTER_PREFIX="$PREFIX" \
    ip netns exec "$(ns_of h1)" unshare --uts /bin/sh -c 'hostname h1; exec "$@"' x "$@" &
  child=$!
  trap 'kill -KILL "$child" 2>/dev/null; exit 130' INT
  trap 'kill -KILL "$child" 2>/dev/null; exit 143' TERM
  trap 'kill -KILL "$child" 2>/dev/null; exit 129' HUP
  local rc=0
  wait "$child" || rc=$?
  return "$rc"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  run) shift; run "$@" ;;
  mpirun) mpirun_line ;;
  status)
    for ns in "$SW" $(for h in "${HOSTS[@]}"; do ns_of "$h"; done); do
      if exists "$ns"; then
        if marked "$ns"; then echo "$ns: up"; else echo "$ns: exists, not ours"; fi
      else
        echo "$ns: absent"
      fi
    done
    ;;
  *) die "usage: cluster.sh up|down|run CMD...|mpirun|status" ;;
esac
