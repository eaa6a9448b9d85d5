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
cluster_overlay_off() {
  nsenter -t "${CLUSTER_SSHD_PIDS[$(($1 - 1))]}" -m umount "$2"
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
