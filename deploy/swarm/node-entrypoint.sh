#!/bin/sh
# The entrypoint of shoplab/swarm-node (Dockerfile.node): checks what the inner Docker engine
# needs from the way the container was started, then becomes that engine. Its arguments are
# passed on to dockerd.
set -eu

fail() {
  echo "swarm-node: $*" >&2
  exit 1
}

# Without these the engine starts but cannot make a container's network or cgroups.
if ! iptables -t nat -L -n >/dev/null 2>&1; then
  fail "iptables does not work in this container: start it with --cap-add ALL --cap-drop SYS_RESOURCE (NET_ADMIN at least)"
fi
# cgroup v1 (these machines): the controllers are mounted read-only unless the host's
# hierarchy is bound in; cgroup v2: the one hierarchy.
cgroups=/sys/fs/cgroup
if [ -d /sys/fs/cgroup/memory ]; then cgroups=/sys/fs/cgroup/memory; fi
if [ ! -w "$cgroups" ]; then
  fail "the cgroup hierarchy is read-only here: start the node with -v /sys/fs/cgroup:/sys/fs/cgroup and --security-opt systempaths=unconfined"
fi

# A stale pid file from a node container that was killed and restarted would stop dockerd.
rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid

exec dockerd "$@"
