#!/usr/bin/env bash
# A one-node SLURM with accounting for the tests (../shared/notes/toolchain.md §12), as root, state in $DIR.
#   .ci/slurm.sh up    install (Debian packages) if needed, start munged, mariadbd, slurmdbd, slurmctld, slurmd
#   .ci/slurm.sh down  stop what `up` started, by the pids it recorded
# Idempotent: `up` with the daemons running only checks them. Prints `export SLURM_CONF=…` for a shell to eval.
set -euo pipefail
DIR=$(realpath -m "${SLURM_DIR:-build/slurm}")
CONF=$DIR/slurm.conf
CLUSTER=helpers
run() { timeout "${T:-60}" "$@"; }
alive() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }
munge_up() { alive munged || { [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; }; }

down() {
  for d in slurmd slurmctld slurmdbd mariadbd munged; do
    if alive "$d"; then kill "$(cat "$DIR/$d.pid")" && echo "stopped $d"; fi
    rm -f "$DIR/$d.pid"
  done
}

up() {
  [ "$(id -u)" = 0 ] || { echo "slurm-up needs root"; exit 1; }
  if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
    T=600 run apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive T=600 run apt-get install -y -q slurm-wlm munge slurmdbd mariadb-server >/dev/null
  fi
  mkdir -p "$DIR"/{spool,state,log,db}
  cpus=$(nproc); mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
  cat > "$CONF" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=2000
KillWait=5
ReturnToService=2
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmdSpoolDir=$DIR/spool
StateSaveLocation=$DIR/state
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$CONF
  if ! munge_up; then
    install -d -o munge -g munge -m 0755 /run/munge
    if ! { [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; }; then
      runuser -u munge -- /usr/sbin/munged  # started here: recorded, so `down` stops it (a running one is kept)
      for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
      cp /run/munge/munged.pid "$DIR/munged.pid"
    fi
  fi
  if ! alive mariadbd; then
    [ -d "$DIR/db/mysql" ] || run mariadb-install-db --user=root --datadir="$DIR/db" >/dev/null
    mariadbd --no-defaults --user=root --datadir="$DIR/db" --socket="$DIR/mysql.sock" --bind-address=127.0.0.1 \
      --port=3307 --pid-file="$DIR/mariadbd.pid.db" >"$DIR/log/mariadb.log" 2>&1 &
    echo $! > "$DIR/mariadbd.pid"
    for _ in $(seq 100); do [ -S "$DIR/mysql.sock" ] && break; sleep 0.1; done
    run mariadb --socket="$DIR/mysql.sock" -u root -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  fi
  if ! alive slurmdbd; then
    cat > "$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3307
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 0600 "$DIR/slurmdbd.conf"
    slurmdbd
    for _ in $(seq 300); do run sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.1; done
    run sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
  fi
  alive slurmctld || slurmctld
  alive slurmd || slurmd
  for _ in $(seq 300); do sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)' && break; sleep 0.1; done
  sinfo -h -o %T | grep -Eq '^(idle|mixed|allocated)' || { echo "slurmd did not come up: see $DIR/log"; exit 1; }
  T=30 run srun -t 1 hostname >/dev/null
  echo "export SLURM_CONF=$CONF"
}

"${1:-up}"
