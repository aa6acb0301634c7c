#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the tests and .ci/run.
#
#   scripts/slurm_one_node.sh start   # installs Debian's packages if missing
#   scripts/slurm_one_node.sh status
#   scripts/slurm_one_node.sh stop
#
# As root, without systemd or cgroups (../docs/cluster.md): munged runs as the
# munge user, slurmctld and slurmd in the foreground in the background, their
# process ids and state under $SLURM_ONE_NODE_DIR (default
# /tmp/localperf-slurm). Two partitions: `debug` (default, PriorityTier 1)
# and `high` (PriorityTier 10), whose jobs requeue running `debug` jobs
# (PreemptMode=REQUEUE). cred_expire=10 and a 2 s scheduler bring a requeued
# job back in about 12 s. /etc/slurm/slurm.conf is written only if absent or
# written by this script before (first line). Exit status 3: cannot run here
# (not root, no apt-get, a daemon that does not start); the line says why.
set -euo pipefail
STATE=${SLURM_ONE_NODE_DIR:-/tmp/localperf-slurm}
CONF=/etc/slurm/slurm.conf
MARK='# written by localperf scripts/slurm_one_node.sh'
PACKAGES=(slurmctld slurmd slurm-client munge)

cannot() { echo "slurm_one_node: cannot run here: $*" >&2; exit 3; }

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    && command -v sbatch >/dev/null && command -v munged >/dev/null && return
  command -v apt-get >/dev/null || cannot "no apt-get to install ${PACKAGES[*]}"
  echo "slurm_one_node: installing ${PACKAGES[*]}" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
      -y -qq --no-install-recommends "${PACKAGES[@]}"; } >"${STATE}/apt.log" \
      2>&1 || cannot "apt-get install failed (${STATE}/apt.log)"
}

write_conf() {
  if [[ -f ${CONF} ]] && [[ $(head -n1 "${CONF}") != "${MARK}" ]]; then
    cannot "${CONF} exists and is not ours (a real cluster?)"
  fi
  local node
  node=$(slurmd -C | head -n1)
  mkdir -p /etc/slurm "${STATE}/ctld" "${STATE}/d"
  cat >"${CONF}" <<EOF
${MARK}
ClusterName=localperf
SlurmctldHost=$(hostname -s)
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=sched_interval=2,bf_interval=2
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
ReturnToService=2
StateSaveLocation=${STATE}/ctld
SlurmdSpoolDir=${STATE}/d
SlurmctldPidFile=${STATE}/slurmctld.pid
SlurmdPidFile=${STATE}/slurmd.pid
SlurmctldLogFile=${STATE}/slurmctld.log
SlurmdLogFile=${STATE}/slurmd.log
${node} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE PriorityTier=1
PartitionName=high Nodes=ALL MaxTime=INFINITE PriorityTier=10
EOF
}

start_munge() {
  pgrep -x munged >/dev/null && return
  [[ -s /etc/munge/munge.key ]] || mungekey --create --force
  chown munge:munge /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  setpriv --reuid=munge --regid=munge --init-groups \
    munged --foreground </dev/null >"${STATE}/munged.log" 2>&1 &
  echo $! >"${STATE}/munged.daemon"
}

start_daemon() {  # name, command...
  local name=$1; shift
  "$@" </dev/null >>"${STATE}/${name}.out" 2>&1 &
  echo $! >"${STATE}/${name}.daemon"
}

node_idle() {
  [[ $(sinfo -h -N -o %T 2>/dev/null | head -n1) =~ ^(idle|mixed|allocated) ]]
}

start() {
  [[ $(id -u) == 0 ]] || cannot "needs root (daemons, /etc/slurm)"
  if node_idle; then echo "slurm_one_node: already up" >&2; return; fi
  mkdir -p "${STATE}"
  install_packages
  write_conf
  start_munge
  start_daemon slurmctld slurmctld -D -c
  start_daemon slurmd slurmd -D
  for _ in $(seq 60); do
    if node_idle; then
      echo "slurm_one_node: up ($(sinfo -h -o '%P %D %c' | tr '\n' ' '))" >&2
      return
    fi
    sleep 0.5
  done
  cannot "the node did not come up in 30 s (logs in ${STATE})"
}

stop() {
  local name pid
  for name in slurmd slurmctld munged; do
    [[ -f ${STATE}/${name}.daemon ]] || continue
    pid=$(cat "${STATE}/${name}.daemon")
    kill "${pid}" 2>/dev/null || true
    for _ in $(seq 20); do
      kill -0 "${pid}" 2>/dev/null || break
      sleep 0.25
    done
    rm -f "${STATE}/${name}.daemon"
  done
  echo "slurm_one_node: stopped" >&2
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) node_idle && sinfo || { echo "slurm_one_node: down" >&2; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
