# A cluster on one machine, for tests: K hosts, each a network namespace with its own address
# on a bridge, its own host name, its own sshd (with a key made for the run) and a hosts file
# naming every host. OpenMPI reaches the hosts over ssh and talks TCP on the bridge only.
#
#   source tests/cluster/cluster_lib.sh
#   cluster_require                 # exits 77 (CTest's skip) with the reason when this machine cannot
#   cluster_up K DIR                # hosts h1..hK at 198.18.0.1..K; DIR holds keys, configs and logs
#   cluster_run I CMD...            # CMD on host I (its namespace and host name), with the MPI settings
#   cluster_hostfile SLOTS          # an OpenMPI hostfile of every host, SLOTS each, on stdout
#   cluster_overlay I SRC DST       # host I sees file SRC at DST (another binary at the same path)
#   cluster_overlay_off I DST       # ... and DST again
#   cluster_kill I                  # host I dies: its link down, everything in it killed
#   cluster_revive I                # ... and comes back (link up, a fresh sshd)
#   cluster_down                    # kills what runs in the hosts and deletes them
#   cluster_link_require            # exits 77 when links cannot be degraded (iptables, tc tbf)
#   cluster_link I LOSS [RATE]      # host I's link drops LOSS% of packets each way (100: cut off,
#                                   # though its processes live on), and carries at most RATE (tc)
#   cluster_link_clear I            # ... and is whole again
#   cluster_slurm_require           # exits 77 when Slurm or munge is missing (after cluster_require)
#   cluster_slurm_up CPUS           # Slurm on the hosts: munged and slurmctld on h1, slurmd on each
#   cluster_slurm I CMD...          # a Slurm command (sbatch, squeue, scancel) on host I
# cluster_up traps EXIT, INT and TERM to run cluster_down and then CLUSTER_CLEANUP (a command the
# caller may set, e.g. removing its own files).
#
# Everything the library makes is named tessel-<pid>-*, lives in namespaces it creates (the
# bridge too, in a namespace of its own) or under DIR, and goes in cluster_down; nothing outside
# is changed, except that sshd's privilege-separation directory /run/sshd is made when missing.
# Every wait is bounded.

CLUSTER_PREFIX=tessel-$$
CLUSTER_HOSTS=0
CLUSTER_DIR=
CLUSTER_SSHD_PIDS=()

cluster_skip() {
  echo "SKIP: $*"
  exit 77
}

cluster_require() {
  [ "$(id -u)" -eq 0 ] || cluster_skip "the namespace cluster needs root (network namespaces and sshd)"
  command -v ip >/dev/null || cluster_skip "no ip (Debian: iproute2, which scripts/setup.sh installs)"
  [ -x /usr/sbin/sshd ] || cluster_skip "no sshd (Debian: openssh-server, which scripts/setup.sh installs)"
  command -v ssh-keygen >/dev/null || cluster_skip "no ssh-keygen (Debian: openssh-client)"
  command -v unshare >/dev/null || cluster_skip "no unshare (Debian: util-linux)"
  command -v nsenter >/dev/null || cluster_skip "no nsenter (Debian: util-linux)"
  local probe=$CLUSTER_PREFIX-probe
  ip netns add "$probe" 2>/dev/null || cluster_skip "this machine cannot create network namespaces (ip netns add failed)"
  ip -n "$probe" link add probe0 type bridge 2>/dev/null || {
    ip netns del "$probe"
    cluster_skip "this machine cannot create a bridge in a network namespace"
  }
  ip netns del "$probe"
}

cluster_ns() { echo "$CLUSTER_PREFIX-h$1"; }
cluster_addr() { echo "198.18.0.$1"; }

# The environment every command on a host gets: ssh for OpenMPI's daemons, TCP on the bridge
# only (no shared memory between hosts, no loopback between them).
cluster_env() {
  echo "OMPI_MCA_plm_rsh_agent=ssh -F $CLUSTER_DIR/ssh_config"
  echo "OMPI_MCA_btl=tcp,self"
  echo "OMPI_MCA_btl_tcp_if_include=198.18.0.0/24"
  echo "OMPI_MCA_oob_tcp_if_include=198.18.0.0/24"
  echo "OMPI_ALLOW_RUN_AS_ROOT=1"
  echo "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
}

cluster_run() {
  local i=$1
  shift
  local envs=() line
  while IFS= read -r line; do envs+=("$line"); done < <(cluster_env)
  ip netns exec "$(cluster_ns "$i")" unshare --uts sh -c 'hostname "$0" && exec "$@"' "h$i" env "${envs[@]}" "$@"
}

cluster_hostfile() {
  local i
  for ((i = 1; i <= CLUSTER_HOSTS; i++)); do echo "h$i slots=$1"; done
}

# Host I comes back after cluster_kill: its link up and a fresh sshd.
cluster_revive() {
  local i=$1 ns
  ns=$(cluster_ns "$i")
  ip -n "$CLUSTER_PREFIX-switch" link set "h$i" up
  ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && exec /usr/sbin/sshd -D -e -f "$1"' "h$i" \
    "$CLUSTER_DIR/sshd_h$i.conf" > /dev/null 2>> "$CLUSTER_DIR/sshd_h$i.log" &
  CLUSTER_SSHD_PIDS[$((i - 1))]=$!
  disown $!
  local tries=0
  until cluster_run 1 ssh -F "$CLUSTER_DIR/ssh_config" "h$i" true 2>/dev/null; do
    tries=$((tries + 1))
    [ $tries -lt 50 ] || { echo "cluster: host h$i does not come back" >&2; return 1; }
    sleep 0.2
  done
}

# Host I dies: its link goes down and everything running in it (sshd, ranks) is killed.
cluster_kill() {
  local pid
  ip -n "$CLUSTER_PREFIX-switch" link set "h$1" down
  for pid in $(ip netns pids "$(cluster_ns "$1")"); do kill -9 "$pid" 2>/dev/null || true; done
}

# Host I's sessions run in its sshd's mount namespace (`ip netns exec` gave it one of its own):
# a bind mount there changes what that host alone sees.
cluster_overlay() {
  nsenter -t "${CLUSTER_SSHD_PIDS[$(($1 - 1))]}" -m mount --bind "$2" "$3"
}
cluster_overlay_off() {  # (at most 10 s while a program started from it still runs)
  local tries=0
  until nsenter -t "${CLUSTER_SSHD_PIDS[$(($1 - 1))]}" -m umount "$2" 2>/dev/null; do
    tries=$((tries + 1))
    [ $tries -lt 100 ] || { echo "cluster: cannot unmount $2 on host h$1" >&2; return 1; }
    sleep 0.1
  done
}

cluster_up() {
  local k=$1 i j
  CLUSTER_DIR=$2
  mkdir -p "$CLUSTER_DIR"
  trap 'cluster_down; eval "${CLUSTER_CLEANUP:-}"' EXIT
  trap 'exit 130' INT TERM
  cluster_sweep
  ssh-keygen -q -t ed25519 -N "" -f "$CLUSTER_DIR/id_ed25519"
  ssh-keygen -q -t ed25519 -N "" -f "$CLUSTER_DIR/host_key"
  cp "$CLUSTER_DIR/id_ed25519.pub" "$CLUSTER_DIR/authorized_keys"
  chmod 600 "$CLUSTER_DIR/authorized_keys"
  cat > "$CLUSTER_DIR/ssh_config" <<EOF
Host *
  IdentityFile $CLUSTER_DIR/id_ed25519
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  BatchMode yes
  ConnectTimeout 5
EOF
  mkdir -p /run/sshd
  local switch=$CLUSTER_PREFIX-switch
  ip netns add "$switch"
  ip -n "$switch" link add br0 type bridge
  ip -n "$switch" link set br0 up
  CLUSTER_HOSTS=$k
  for ((i = 1; i <= k; i++)); do
    local ns
    ns=$(cluster_ns "$i")
    ip netns add "$ns"
    ip -n "$switch" link add "h$i" type veth peer name eth0 netns "$ns"
    ip -n "$switch" link set "h$i" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$(cluster_addr "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
    # `ip netns exec` shows /etc/netns/NAME/hosts as /etc/hosts inside the namespace.
    mkdir -p "/etc/netns/$ns"
    {
      echo "127.0.0.1 localhost"
      for ((j = 1; j <= k; j++)); do echo "$(cluster_addr "$j") h$j"; done
    } > "/etc/netns/$ns/hosts"
    cat > "$CLUSTER_DIR/sshd_h$i.conf" <<EOF
ListenAddress $(cluster_addr "$i"):22
HostKey $CLUSTER_DIR/host_key
AuthorizedKeysFile $CLUSTER_DIR/authorized_keys
PidFile $CLUSTER_DIR/sshd_h$i.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100
EOF
    ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && exec /usr/sbin/sshd -D -e -f "$1"' "h$i" \
      "$CLUSTER_DIR/sshd_h$i.conf" > /dev/null 2> "$CLUSTER_DIR/sshd_h$i.log" &
    CLUSTER_SSHD_PIDS+=($!)
    disown $!  # reaped in cluster_down, without the shell's job report
  done
  # Every host answers ssh from host 1 (at most 10 s each).
  for ((i = 1; i <= k; i++)); do
    local tries=0
    until cluster_run 1 ssh -F "$CLUSTER_DIR/ssh_config" "h$i" true 2>/dev/null; do
      tries=$((tries + 1))
      if [ $tries -ge 50 ]; then
        cat "$CLUSTER_DIR/sshd_h$i.log" >&2
        echo "cluster: host h$i does not answer ssh" >&2
        return 1
      fi
      sleep 0.2
    done
  done
}

cluster_link_require() {
  command -v iptables >/dev/null || cluster_skip "no iptables (Debian: iptables, which scripts/setup.sh installs)"
  command -v tc >/dev/null || cluster_skip "no tc (Debian: iproute2)"
  local probe=$CLUSTER_PREFIX-probe ok=1
  ip netns add "$probe" 2>/dev/null || cluster_skip "this machine cannot create network namespaces"
  ip -n "$probe" link add probe0 type veth peer name probe1 2>/dev/null \
    && ip netns exec "$probe" iptables -A OUTPUT -m statistic --mode random --probability 0.5 -j DROP 2>/dev/null \
    && ip netns exec "$probe" tc qdisc add dev probe0 root tbf rate 10mbit burst 32kbit latency 400ms 2>/dev/null \
    || ok=0
  ip netns del "$probe"
  [ $ok -eq 1 ] || cluster_skip "this kernel cannot drop packets at random (iptables statistic) or shape a link (tc tbf)"
}

# The link of host I loses LOSS percent of its packets in each direction (iptables' random
# statistic match in the host's namespace; 100 drops every packet) and, given RATE (tc's units,
# e.g. 20mbit), carries at most that each way: a token bucket whose queue adds delay under load. tc's
# netem would also add fixed delay, but many kernels lack it (sch_netem).
cluster_link() {
  local i=$1 loss=$2 rate=${3:-} ns
  ns=$(cluster_ns "$i")
  cluster_link_clear "$i"
  if [ "$loss" -ge 100 ]; then
    ip netns exec "$ns" iptables -A INPUT -i eth0 -j DROP
    ip netns exec "$ns" iptables -A OUTPUT -o eth0 -j DROP
  elif [ "$loss" -gt 0 ]; then
    local p
    p=$(awk -v l="$loss" 'BEGIN { printf "%.4f", l / 100 }')
    ip netns exec "$ns" iptables -A INPUT -i eth0 -m statistic --mode random --probability "$p" -j DROP
    ip netns exec "$ns" iptables -A OUTPUT -o eth0 -m statistic --mode random --probability "$p" -j DROP
  fi
  if [ -n "$rate" ]; then  # both ways: the host's end of its link, and the switch's end
    tc -n "$ns" qdisc replace dev eth0 root tbf rate "$rate" burst 64kbit latency 200ms
    tc -n "$CLUSTER_PREFIX-switch" qdisc replace dev "h$i" root tbf rate "$rate" burst 64kbit latency 200ms
  fi
}
cluster_link_clear() {
  local ns
  ns=$(cluster_ns "$1")
  ip netns exec "$ns" iptables -F INPUT
  ip netns exec "$ns" iptables -F OUTPUT
  tc -n "$ns" qdisc del dev eth0 root 2>/dev/null || true
  tc -n "$CLUSTER_PREFIX-switch" qdisc del dev "h$1" root 2>/dev/null || true
}

cluster_slurm_require() {
  local tool
  for tool in munged slurmctld slurmd sbatch scontrol; do
    command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin command -v "$tool" >/dev/null \
      || cluster_skip "no $tool (Debian: munge, slurmctld, slurmd, slurm-client, which scripts/setup.sh installs)"
  done
  # slurmd starts its cgroup plugin even when no cgroup feature is configured.
  [ -n "$(ls -A /sys/fs/cgroup 2>/dev/null)" ] || cluster_skip "slurmd needs a cgroup filesystem at /sys/fs/cgroup"
}

# A daemon on host I that must see this machine's /sys (slurmd reads its cgroup filesystem there,
# which `ip netns exec` hides by mounting the namespace's own /sys): host I's network and host
# name, and its hosts file bound over /etc/hosts in a mount namespace of its own.
cluster_host_daemon() {
  local i=$1 ns
  shift
  ns=$(cluster_ns "$i")
  nsenter --net="/run/netns/$ns" unshare --mount --uts \
    sh -c 'mount --bind "$1" /etc/hosts && hostname "$2" && shift 2 && exec "$@"' sh "/etc/netns/$ns/hosts" "h$i" "$@"
}

cluster_slurm() {
  local i=$1
  shift
  cluster_run "$i" env SLURM_CONF="$CLUSTER_DIR/slurm/slurm.conf" "$@"
}

# Slurm with every host a node of CPUS cpus, in one partition: munged (with a key made for the
# run) and slurmctld on h1, slurmd on every host, all under DIR/slurm and DIR/munge. Requeued
# jobs may start again after 5 s (cred_expire), not Slurm's default 2 minutes.
cluster_slurm_up() {
  local cpus=$1 i d=$CLUSTER_DIR/slurm m=$CLUSTER_DIR/munge
  PATH=$PATH:/usr/sbin
  mkdir -p "$d/state" "$m"
  chmod 755 "$m"
  head -c 1024 /dev/urandom > "$m/munge.key"
  chmod 400 "$m/munge.key"
  cluster_run 1 munged --force --foreground --socket="$m/socket" --key-file="$m/munge.key" --log-file="$m/munged.log" \
    --pid-file="$m/munged.pid" --seed-file="$m/seed" > "$m/munged.out" 2>&1 &
  disown $!
  {
    echo "ClusterName=tessel"
    echo "SlurmctldHost=h1($(cluster_addr 1))"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "AuthInfo=socket=$m/socket,cred_expire=5"
    echo "CredType=cred/munge"
    echo "StateSaveLocation=$d/state"
    echo "SlurmdSpoolDir=$d/spool-%n"
    echo "SlurmctldPidFile=$d/slurmctld.pid"
    echo "SlurmdPidFile=$d/slurmd-%n.pid"
    echo "SlurmctldLogFile=$d/slurmctld.log"
    echo "SlurmdLogFile=$d/slurmd-%n.log"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "AccountingStorageType=accounting_storage/none"
    echo "JobCompType=jobcomp/none"
    echo "SelectType=select/linear"
    echo "SchedulerType=sched/builtin"
    echo "SchedulerParameters=sched_interval=1"
    echo "MpiDefault=none"
    echo "ReturnToService=2"
    echo "SlurmdParameters=config_overrides"
    for ((i = 1; i <= CLUSTER_HOSTS; i++)); do
      echo "NodeName=h$i NodeAddr=$(cluster_addr "$i") CPUs=$cpus State=UNKNOWN"
    done
    echo "PartitionName=cluster Nodes=h[1-$CLUSTER_HOSTS] Default=YES MaxTime=INFINITE State=UP"
  } > "$d/slurm.conf"
  local tries=0
  until [ -S "$m/socket" ]; do
    tries=$((tries + 1))
    [ $tries -lt 50 ] || { cat "$m/munged.out" >&2; echo "cluster: munged does not start" >&2; return 1; }
    sleep 0.1
  done
  cluster_slurm 1 slurmctld -D -i > "$d/slurmctld.out" 2>&1 &
  disown $!
  for ((i = 1; i <= CLUSTER_HOSTS; i++)); do
    mkdir -p "$d/spool-h$i"
    cluster_host_daemon "$i" env SLURM_CONF="$d/slurm.conf" slurmd -D -N "h$i" > "$d/slurmd-h$i.out" 2>&1 &
    disown $!
  done
  # Every node registers and is idle (at most 30 s).
  tries=0
  until [ "$(cluster_slurm 1 sinfo -h -N -t idle -o %N 2>/dev/null | wc -l)" -eq "$CLUSTER_HOSTS" ]; do
    tries=$((tries + 1))
    if [ $tries -ge 60 ]; then
      tail -n 5 "$d"/*.out >&2
      echo "cluster: the Slurm nodes do not come up idle" >&2
      return 1
    fi
    sleep 0.5
  done
}

# Namespaces of earlier runs whose script is gone (killed past its trap): deleted.
cluster_sweep() {
  local ns pid p
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^tessel-[0-9]+-' || true); do
    pid=${ns#tessel-}
    pid=${pid%%-*}
    [ -d "/proc/$pid" ] && continue
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
}

cluster_down() {
  local i ns pid
  for ((i = 1; i <= CLUSTER_HOSTS; i++)); do
    ns=$(cluster_ns "$i")
    # Whatever still runs in the host (sshd, ranks), then the host itself.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  ip netns del "$CLUSTER_PREFIX-switch" 2>/dev/null || true
  CLUSTER_HOSTS=0
}
