# A throwaway single-node Slurm cluster on this machine (sourced by scripts/check-slurm).
#
#   source scripts/lib/slurm-cluster.sh
#   slurm_install                 # Debian's slurm-wlm and munge, when missing (apt-get)
#   slurm_start DIR               # munged, slurmctld, slurmd; config, state, spool, logs, sockets under DIR
#   ... sbatch / squeue / scancel / scontrol (SLURM_CONF is exported) ...
#   slurm_stop                    # the daemons slurm_start started, by pid
#
# Nothing outside DIR is touched: a private munge key and socket, free TCP ports picked at start, pid files
# in DIR. The node is this machine (hostname -s) with its real CPU count and memory; ProctrackType linuxproc
# and TaskPlugin none (no cgroups needed). Runs as root (slurmd must run jobs as the submitting user).

SLURM_DIR=""
SLURM_STARTED_PIDS=()

slurm_log() { echo "   [slurm] $*" >&2; }

# Installs slurm-wlm (slurmctld, slurmd, the client commands) and munge unless they are present.
slurm_install() {
  local missing=()
  command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1 ||
    missing+=(slurm-wlm)
  command -v munged >/dev/null 2>&1 || missing+=(munge)
  [ ${#missing[@]} -eq 0 ] && return 0
  slurm_log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >"${TMPDIR:-/tmp}/smelt-slurm-apt.log" 2>&1; then
    apt-get update >>"${TMPDIR:-/tmp}/smelt-slurm-apt.log" 2>&1 &&
      apt-get install -y --no-install-recommends "${missing[@]}" >>"${TMPDIR:-/tmp}/smelt-slurm-apt.log" 2>&1 || {
      tail -5 "${TMPDIR:-/tmp}/smelt-slurm-apt.log" >&2
      return 1
    }
  fi
}

# A TCP port nobody listens on, from the range 20000-59999.
slurm_free_port() {
  local port
  while :; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if ! (ss -ltnH 2>/dev/null || netstat -ltn 2>/dev/null) | awk '{print $4}' | grep -q ":$port\$"; then
      echo "$port"
      return
    fi
  done
}

# Waits up to $2 seconds (default 30) for command $1 to succeed.
slurm_wait_for() {
  local deadline=$((SECONDS + ${2:-30}))
  until eval "$1" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

slurm_start() {
  SLURM_DIR=$1
  mkdir -p "$SLURM_DIR"/{state,spool,log,munge}
  chmod 700 "$SLURM_DIR/munge"
  local node cpus memory ctld_port d_port
  node=$(hostname -s)
  cpus=$(nproc --all)
  # RealMemory: what the node really has, less 1 GiB for the system (slurmd refuses more than it sees).
  memory=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 - 1024 }' /proc/meminfo)
  ctld_port=$(slurm_free_port)
  d_port=$(slurm_free_port)
  [ "$d_port" != "$ctld_port" ] || d_port=$((ctld_port + 1))

  # munge: a private key and socket, so a system munged (if any) is left alone.
  dd if=/dev/urandom of="$SLURM_DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$SLURM_DIR/munge/munge.key"
  munged --socket="$SLURM_DIR/munge/munge.socket" --key-file="$SLURM_DIR/munge/munge.key" \
    --pid-file="$SLURM_DIR/munge/munged.pid" --log-file="$SLURM_DIR/log/munged.log" \
    --seed-file="$SLURM_DIR/munge/munged.seed" --force 2>>"$SLURM_DIR/log/munged.err" || {
    cat "$SLURM_DIR/log/munged.err" "$SLURM_DIR/log/munged.log" >&2 2>/dev/null
    return 1
  }
  slurm_wait_for "[ -s '$SLURM_DIR/munge/munged.pid' ]" 10 || return 1
  SLURM_STARTED_PIDS+=("$(cat "$SLURM_DIR/munge/munged.pid")")

  export SLURM_CONF="$SLURM_DIR/slurm.conf"
  cat >"$SLURM_CONF" <<EOF
# Written by scripts/lib/slurm-cluster.sh: a single-node cluster for Smelt's checks.
ClusterName=smelt-check
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SLURM_DIR/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
ReturnToService=2
MpiDefault=none
JobRequeue=1
# Short timers: a check waits for job state changes.
SchedulerParameters=sched_interval=2
MinJobAge=600
KillWait=5
InactiveLimit=0
NodeName=$node CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=check Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  slurmctld -f "$SLURM_CONF" || { cat "$SLURM_DIR/log/slurmctld.log" >&2; return 1; }
  slurm_wait_for "[ -s '$SLURM_DIR/slurmctld.pid' ]" 20 || { cat "$SLURM_DIR/log/slurmctld.log" >&2; return 1; }
  SLURM_STARTED_PIDS+=("$(cat "$SLURM_DIR/slurmctld.pid")")
  slurmd -f "$SLURM_CONF" || { cat "$SLURM_DIR/log/slurmd.log" >&2; return 1; }
  slurm_wait_for "[ -s '$SLURM_DIR/slurmd.pid' ]" 20 || { cat "$SLURM_DIR/log/slurmd.log" >&2; return 1; }
  SLURM_STARTED_PIDS+=("$(cat "$SLURM_DIR/slurmd.pid")")
  if ! slurm_wait_for "sinfo -h -N -o %t | grep -qx idle" 60; then
    sinfo -N >&2 || true
    tail -20 "$SLURM_DIR/log/slurmctld.log" "$SLURM_DIR/log/slurmd.log" >&2
    return 1
  fi
  slurm_log "node $node up: $cpus CPUs, ${memory} MB, ports $ctld_port/$d_port, $(sinfo -V)"
}

# Stops the daemons slurm_start started (slurmd, slurmctld, munged: the reverse order), by pid.
slurm_stop() {
  local i pid
  for ((i = ${#SLURM_STARTED_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${SLURM_STARTED_PIDS[$i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  SLURM_STARTED_PIDS=()
}

# The state of job (or array task) $1 as sacct would say it, from scontrol (no accounting here).
slurm_job_state() {
  scontrol -o show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1
}

# Waits (up to $2 seconds) until job $1 and all its array tasks have left the queue (finished in any
# state); fails on timeout.
slurm_wait_job() {
  local deadline=$((SECONDS + ${2:-300}))
  while squeue -h -j "$1" -o %i 2>/dev/null | grep -q .; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 1
  done
}
