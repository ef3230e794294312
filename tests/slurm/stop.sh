#!/usr/bin/env bash
# Stop what tests/slurm/start.sh started in DIR (jobs are cancelled first); DIR stays for its logs.
set -uo pipefail
DIR=$(realpath -m "${1:-${GLACIER_SLURM_DIR:-/tmp/glacier-slurm}}")
export SLURM_CONF="$DIR/slurm.conf"
[ -f "$SLURM_CONF" ] && command -v scancel >/dev/null && scancel --full --quiet --user="$(id -un)" 2>/dev/null
for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$DIR/munge/munged.pid"; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  rm -f "$pidfile"
done
exit 0
