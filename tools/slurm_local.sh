#!/usr/bin/env bash
# A throw-away one-node Slurm cluster (munged + slurmctld + slurmd) living entirely in DIR, for tests and CI.
#   tools/slurm_local.sh up DIR     # start it; the last stdout line is `export SLURM_CONF=...` (eval it)
#   tools/slurm_local.sh down DIR   # stop the daemons started by `up DIR`
# Needs root and the Debian packages slurmctld slurmd slurm-client munge; installs nothing itself.
# Progress goes to stderr, so `eval "$(tools/slurm_local.sh up DIR)"` only sees the export line.
set -euo pipefail

die() { echo "slurm_local: $*" >&2; exit 1; }
log() { echo "slurm_local: $*" >&2; }

cmd="${1:-}"; dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 up|down DIR"
[ "$(id -u)" -eq 0 ] || die "must run as root (slurmd and munged run as root here)"

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }  # zombies count as dead
# Process lookups read /proc directly: procps (pgrep, ps) is not installed on a bare Debian.
ppid_of() { local st; { read -r st < "/proc/$1/stat"; } 2>/dev/null || return 1; st="${st##*) }"; st="${st#* }"; echo "${st%% *}"; }
tree() { local p; echo "$1"; for p in /proc/[0-9]*; do p="${p#/proc/}"; [ "$(ppid_of "$p")" = "$1" ] && tree "$p"; done; }

stop_pid() {  # stop_pid PIDFILE: SIGTERM, wait up to 10 s, then SIGKILL; a missing file or dead pid is fine
  local f="$1" pid i
  [ -f "$f" ] || return 0
  pid="$(cat "$f" 2>/dev/null || true)"
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do alive "$pid" || break; sleep 0.2; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  [ -d "$dir" ] || { log "no $dir, nothing to stop"; return 0; }
  dir="$(cd "$dir" && pwd)"
  # Cancel jobs first, so that slurmd can reap their slurmstepd processes before it stops.
  if [ -f "$dir/slurm.conf" ] && alive "$(cat "$dir/run/slurmctld.pid" 2>/dev/null)"; then
    SLURM_CONF="$dir/slurm.conf" timeout 10 scancel --full -u root 2>/dev/null && sleep 1 || true
  fi
  stop_pid "$dir/run/slurmd.pid"; stop_pid "$dir/run/slurmctld.pid"; stop_pid "$dir/munge/munged.pid"
  # Any slurmstepd (and its job's processes) left behind by this cluster; it inherits SLURM_CONF from slurmd.
  local p
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"; [ "$(cat "/proc/$p/comm" 2>/dev/null)" = slurmstepd ] || continue
    grep -qzx "SLURM_CONF=$dir/slurm.conf" "/proc/$p/environ" 2>/dev/null && kill -KILL $(tree "$p") 2>/dev/null || true
  done
  log "stopped the cluster in $dir"
}

up() {
  local c
  for c in munged slurmctld slurmd sinfo sbatch scancel; do
    command -v "$c" >/dev/null || die "'$c' not found: apt-get install -y slurmctld slurmd slurm-client munge"
  done
  local port
  for port in "${SLURMCTLD_PORT:-6817}" "${SLURMD_PORT:-6818}"; do  # a cluster left running would answer us
    ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
      || die "port $port is in use (a cluster still up? '$0 down' it, or set SLURMCTLD_PORT/SLURMD_PORT)"
  done
  mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  # munged refuses group/world-writable dirs on its paths and warns unless the socket's dirs are
  # searchable by all: 0755, owned by root (the key itself is 0400).
  chmod 0755 "$dir"; mkdir -p -m 0755 "$dir"/{munge,run,log,spool/slurmd,spool/ctld}
  local host cpus mem conf="$dir/slurm.conf" sock="$dir/munge/munge.socket"
  host="$(hostname -s)"; cpus="$(nproc)"
  # 90% of MemTotal in MB: a RealMemory above what slurmd measures would drain the node.
  mem="$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)"
  cat > "$conf" <<EOF
# Written by tools/slurm_local.sh: a one-node cluster on $host, all state in $dir.
ClusterName=dcatlocal
# The explicit 127.0.0.1 means the host name need not resolve.
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# Trust the CPUs/RealMemory below instead of draining the node when slurmd measures something else.
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmdSpoolDir=$dir/spool/slurmd
StateSaveLocation=$dir/spool/ctld
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  trap 'down' EXIT  # any failure from here on stops whatever was started
  # munge: a fresh key, and a socket in DIR so the system munged (if any) is left alone.
  if command -v mungekey >/dev/null; then mungekey --create --force --keyfile="$dir/munge/munge.key"
  else dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none; fi
  chmod 0400 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$sock" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
    || die "munged failed to start; see $dir/munge/munged.log"
  export SLURM_CONF="$conf"
  slurmctld -i || die "slurmctld failed to start; see $dir/log/slurmctld.log"
  slurmd -N "$host" || die "slurmd failed to start; see $dir/log/slurmd.log"
  # Wait (at most 30 s) for the node to register and be idle.
  local i state=""
  for i in $(seq 60); do
    state="$(sinfo -h -N -n "$host" -o %t 2>/dev/null || true)"
    [ "$state" = "idle" ] && break
    sleep 0.5
  done
  if [ "$state" != "idle" ]; then
    tail -n 5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    die "node $host is '${state:-unreachable}', not idle, after 30 s (logs in $dir/log)"
  fi
  trap - EXIT
  log "cluster up: node $host ($cpus CPUs, ${mem} MB), partition debug, state in $dir"
  echo "export SLURM_CONF=$conf"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  *) die "usage: $0 up|down DIR" ;;
esac
