#!/bin/sh
# The entrypoint of shoplab/swarm-node (Dockerfile.node): checks what the inner Docker engine
# needs from the way the container was started, then becomes that engine. Its arguments are
# passed on to dockerd.
set -eu

fail() {
  echo "swarm-node: $*" >&2
  exit 1
}

# overlay2 cannot stack on the container's own overlay root; without a volume the engine
# would fall back to the vfs driver, a full copy per layer, and fill the disk.
fstype=$(stat -f -c %T /var/lib/docker)
if [ "$fstype" = overlayfs ]; then
  fail "/var/lib/docker is on the container's overlay filesystem; start the node with a volume for it (-v NAME:/var/lib/docker)"
fi

# Without these the engine starts but cannot make a container's network or cgroups.
if ! iptables -t nat -L -n >/dev/null 2>&1; then
  fail "iptables does not work in this container: start it with --cap-add ALL --cap-drop SYS_RESOURCE (NET_ADMIN at least)"
fi
if [ ! -w /sys/fs/cgroup ] && [ ! -w /sys/fs/cgroup/memory ]; then
  fail "the cgroup hierarchy is read-only here: start the node with -v /sys/fs/cgroup:/sys/fs/cgroup and --security-opt systempaths=unconfined"
fi

# A stale pid file from a node container that was killed and restarted would stop dockerd.
rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid

exec dockerd "$@"
