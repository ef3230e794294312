#!/usr/bin/env bash
# A real one-node Slurm (Debian's slurm-wlm 22.05: munged, slurmctld, slurmd) for the tests and
# for trying docs/scaling.md's commands on one machine. Everything it starts or writes lives in
# one folder (default /tmp/glacier-slurm): its own munge key and socket, slurm.conf, state,
# spool and logs, on ports of its own, so it leaves any system Slurm alone.
#
#   bash tests/slurm/start.sh [DIR]      # prints SLURM_CONF=DIR/slurm.conf when the node is idle
#   export SLURM_CONF=DIR/slurm.conf     # then sbatch, squeue, sinfo, scontrol use it
#   bash tests/slurm/stop.sh [DIR]
#
# Exit status: 0 started (or already running), 3 cannot start here (not root, no apt-get: the
# reason is on stderr; the tests skip), anything else a failure (the logs are in DIR/log).
set -euo pipefail
DIR=$(realpath -m "${1:-${GLACIER_SLURM_DIR:-/tmp/glacier-slurm}}")
CTLD_PORT=${GLACIER_SLURMCTLD_PORT:-16817}
D_PORT=${GLACIER_SLURMD_PORT:-16818}
NODE=$(hostname -s)
cannot() { echo "cannot start Slurm here: $*" >&2; exit 3; }

install_slurm() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
    && command -v sbatch >/dev/null && return 0
  [ "$(id -u)" = 0 ] || cannot "slurm-wlm and munge are not installed and this is not root"
  command -v apt-get >/dev/null || cannot "slurm-wlm and munge are not installed and there is no apt-get"
  echo "installing slurm-wlm and munge (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || cannot "apt-get update failed"
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >&2 \
    || cannot "apt-get install slurm-wlm munge failed"
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  mkdir -p "$DIR/munge"
  chmod 700 "$DIR/munge"
  [ -f "$DIR/munge/munge.key" ] || {
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge/munge.key"
  }
  running "$DIR/munge/munged.pid" && return 0
  munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed"
}

write_conf() {
  # the node as slurmd sees it (CPUs, sockets, cores, threads, memory), minus 1 GB for the OS
  local hardware memory
  hardware=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ RealMemory=[0-9]*//')
  memory=$(slurmd -C | head -1 | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  cat >"$DIR/slurm.conf" <<CONF
# written by tests/slurm/start.sh
ClusterName=glacier-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$D_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: processes are tracked by their parents, tasks are not bound
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
# seconds between SIGTERM and SIGKILL when a job is cancelled, requeued or out of time
KillWait=10
MinJobAge=3600
# a request the partition can never satisfy (too many CPUs, too much memory or time) is refused
# by sbatch at once, as on most clusters, instead of pending forever
EnforcePartLimits=ALL
DefMemPerCPU=1024
NodeName=$NODE NodeAddr=127.0.0.1 $hardware RealMemory=$((memory - 1024)) State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=30 State=UP
CONF
}

wait_idle() {
  local i state
  for i in $(seq 1 60); do
    state=$(sinfo --noheader --nodes="$NODE" --format=%T 2>/dev/null || true)
    [ "$state" = idle ] && return 0
    sleep 1
  done
  echo "the node did not become idle (state: ${state:-none}); logs in $DIR/log" >&2
  tail -20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
  exit 1
}

install_slurm
[ "$(id -u)" = 0 ] || cannot "slurmd must run as root to start jobs"
mkdir -p "$DIR/log" "$DIR/state" "$DIR/spool"
export SLURM_CONF="$DIR/slurm.conf"
start_munge
[ -f "$DIR/slurm.conf" ] || write_conf
running "$DIR/slurmctld.pid" || slurmctld
running "$DIR/slurmd.pid" || slurmd -N "$NODE"
wait_idle
echo "SLURM_CONF=$SLURM_CONF"
