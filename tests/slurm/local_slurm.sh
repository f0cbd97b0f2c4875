#!/usr/bin/env bash
# A real one-node Slurm on localhost for the sweep tests (Debian's munge, slurmctld, slurmd).
#
#   local_slurm.sh start DIR   configuration, state and logs under DIR; prints SLURM_CONF=<file>
#                              exit 0 when `sinfo` shows the node idle, 77 (with why) when Slurm
#                              cannot start here (not root, packages missing, daemons fail)
#   local_slurm.sh stop DIR    stops the daemons this script started (by their process ids)
#
# Uses its own configuration file (SLURM_CONF) and ports, never /etc/slurm; munged is started
# only when none runs. Needs: apt-get install slurm-wlm munge (scripts/install-deps.sh).
set -uo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
skip() { echo "cannot start Slurm: $*" >&2; exit 77; }

stop_pidfile() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid
  pid=$(cat "$f" 2>/dev/null)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$f"
}

if [ "$cmd" = stop ]; then
  stop_pidfile "$dir/slurmd.pid"
  stop_pidfile "$dir/slurmctld.pid"
  stop_pidfile "$dir/munged.started.pid"
  exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || skip "needs root (slurmd runs jobs as their user)"
for p in munged slurmctld slurmd sbatch squeue sinfo; do
  command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || skip "$p not installed (apt-get install slurm-wlm munge)"
done
mkdir -p "$dir"/{state,spool,log} || skip "cannot create $dir"
dir=$(cd "$dir" && pwd)

# munge: reuse a running one, else start it with the packaged key.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [ -s /etc/munge/munge.key ] || {
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null || skip "cannot create the munge key"
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null
  su -s /bin/sh munge -c /usr/sbin/munged 2>"$dir/log/munged.err" || skip "munged failed: $(cat "$dir/log/munged.err")"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  pgrep -u munge -n munged > "$dir/munged.started.pid" 2>/dev/null
  munge -n | unmunge >/dev/null 2>&1 || skip "munge does not work (munge -n | unmunge)"
fi

host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
[ "$mem" -gt 512 ] || mem=512
# Ports away from the defaults, so that a Slurm already on this machine is not disturbed.
port=${CHESTLAB_SLURM_PORT:-16817}
cat > "$dir/slurm.conf" <<EOF
ClusterName=chestlabtest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$dir/slurm.conf
/usr/sbin/slurmctld -f "$SLURM_CONF" 2>>"$dir/log/slurmctld.err" || skip "slurmctld failed: $(tail -3 "$dir/log/slurmctld.log" 2>/dev/null)"
/usr/sbin/slurmd -f "$SLURM_CONF" 2>>"$dir/log/slurmd.err" || skip "slurmd failed: $(tail -3 "$dir/log/slurmd.log" 2>/dev/null)"
for _ in $(seq 100); do
  state=$(sinfo -h -N -o %t 2>/dev/null | head -1)
  case "$state" in idle*|mix*|alloc*) echo "SLURM_CONF=$SLURM_CONF"; exit 0 ;; esac
  sleep 0.2
done
"$0" stop "$dir"
skip "the node did not come up (sinfo: '${state:-nothing}'); see $dir/log"
