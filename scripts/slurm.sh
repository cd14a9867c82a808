#!/usr/bin/env bash
# A one-node Slurm on this machine, from Debian's packages, for the Slurm launcher's tests
# (tests/test_slurm.py): `scripts/slurm.sh start` installs slurm-wlm and munge when missing,
# writes a configuration for this host (its CPUs, no GPUs, one partition "debug") and starts
# munged, slurmctld and slurmd; `scripts/slurm.sh stop` cancels every job and stops them.
# Needs root (or sudo). Jobs run as the calling user on this machine's file system.
set -euo pipefail
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi
conf_dir=/etc/slurm
state_dir=/var/spool/slurm-transgan

start() {
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        $sudo mkdir -p /etc/munge
        $sudo dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    $sudo chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    $sudo chmod 400 /etc/munge/munge.key
    $sudo mkdir -p /run/munge /var/log/munge /var/lib/munge "$state_dir/ctld" "$state_dir/d"
    $sudo chown -R munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    pgrep -x munged >/dev/null || $sudo -u munge munged 2>/dev/null || $sudo munged --force
    host=$(hostname -s)
    cpus=$(nproc)
    memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    $sudo mkdir -p "$conf_dir"
    $sudo tee "$conf_dir/slurm.conf" >/dev/null <<CONF
ClusterName=transgan-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state_dir/ctld
SlurmdSpoolDir=$state_dir/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurmctld.log
SlurmdLogFile=/var/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=300
InactiveLimit=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
    pgrep -x slurmctld >/dev/null || $sudo slurmctld -i
    pgrep -x slurmd >/dev/null || $sudo slurmd
    for _ in $(seq 60); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            sinfo
            return 0
        fi
        $sudo scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
        sleep 1
    done
    echo "slurm did not come up; see /var/log/slurmctld.log and /var/log/slurmd.log" >&2
    exit 1
}

stop() {
    if command -v scancel >/dev/null && pgrep -x slurmctld >/dev/null; then
        $sudo scancel --full --user "$(id -un)" 2>/dev/null || true
    fi
    for daemon in slurmd slurmctld; do
        $sudo pkill -x "$daemon" 2>/dev/null || true
    done
    for _ in $(seq 30); do
        pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || return 0
        sleep 1
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
