# shellcheck shell=bash
# A Docker engine for CI's container steps (.ci/compose.sh, .ci/swarm.sh), sourced, safe
# under `set -euo pipefail`:
#
#   source .ci/docker.sh
#   docker_install compose         # docker.io (and docker-compose) from apt, when missing
#   docker_up "$work"              # a daemon: the one that answers, or one started here
#   ...
#   docker_down "$status"          # stops the daemon docker_up started, puts the host back
#
# These machines have no systemd: the daemon runs as a child of the step, its output in
# "$work/dockerd.log", and is stopped by its PID — never by name, since another daemon may
# be someone else's. A daemon that already answered is left running.
#
# The `docker` CLI is "$DOCKER": Debian's /usr/bin/docker (20.10, what docker.io installs)
# when it exists. A newer CLI at /usr/local/bin/docker may come first on PATH; it talks to the
# same daemon but warns on every legacy build and may differ in flags, so the steps name
# theirs once here instead of taking whichever PATH finds.

# Deadlines, so a wedged daemon fails the step instead of the CI's 90 minutes.
readonly DOCKER_DAEMON_DEADLINE_S="${DOCKER_DAEMON_DEADLINE_S:-60}"
readonly DOCKER_STOP_DEADLINE_S="${DOCKER_STOP_DEADLINE_S:-30}"

# Set by docker_up when it started the daemon; empty when it found one running.
dockerd_pid=""
_docker_state=""
_docker_ip_forward_before=""
_docker_docker0_before=""

# The CLI the steps call and the daemon docker_up starts (see the header): Debian's when
# installed. Re-read after docker_install, which may add them.
_docker_pick_cli() {
  if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
}
_docker_dockerd() {
  if [[ -x /usr/sbin/dockerd ]]; then echo /usr/sbin/dockerd; else echo dockerd; fi
}
DOCKER="${DOCKER:-}"
[[ -n "$DOCKER" ]] || _docker_pick_cli

# Installs Debian's docker.io when no daemon binary is on this machine (the client alone is
# not enough: a machine may have a client and no engine), and docker-compose when asked with
# `compose`, or debootstrap with `debootstrap`.
docker_install() {
  local missing=() wanted
  command -v "$(_docker_dockerd)" >/dev/null || missing+=(docker.io)
  for wanted in "$@"; do
    case "$wanted" in
      compose) command -v docker-compose >/dev/null || missing+=(docker-compose) ;;
      debootstrap) command -v debootstrap >/dev/null || missing+=(debootstrap) ;;
      *)
        echo "docker_install: unknown extra '$wanted' (known: compose, debootstrap)" >&2
        return 1
        ;;
    esac
  done
  if ((${#missing[@]})); then
    echo "installing ${missing[*]} with apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # Only an explicit choice survives: the default follows what is installed now.
  [[ "$DOCKER" == /usr/bin/docker || "$DOCKER" == docker ]] && _docker_pick_cli
  return 0
}

# Uses the daemon that answers, or starts one and waits until it does. $1 is a folder of the
# step's own for the daemon's log and the host state it records; it must exist.
docker_up() {
  _docker_state=$1
  if "$DOCKER" info >/dev/null 2>&1; then
    echo "a docker daemon already answers: using it, and leaving it running"
    return 0
  fi
  # What a daemon changes on the host and leaves behind when it stops, so docker_down can put
  # it back: its iptables rules and chains (it also sets the FORWARD policy to DROP, which
  # would silently break traffic that other work forwards through this host), IP forwarding,
  # and the docker0 bridge.
  iptables-save -t filter >"$_docker_state/iptables.filter"
  iptables-save -t nat >"$_docker_state/iptables.nat"
  _docker_ip_forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
  _docker_docker0_before=no
  if ip link show docker0 >/dev/null 2>&1; then _docker_docker0_before=yes; fi
  "$(_docker_dockerd)" >"$_docker_state/dockerd.log" 2>&1 &
  dockerd_pid=$!
  local until=$((SECONDS + DOCKER_DAEMON_DEADLINE_S))
  until "$DOCKER" info >/dev/null 2>&1; do
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then
      echo "dockerd exited before it answered; its last lines:" >&2
      tail -n 20 "$_docker_state/dockerd.log" >&2
      dockerd_pid=""
      return 1
    fi
    if ((SECONDS >= until)); then
      echo "dockerd did not answer within ${DOCKER_DAEMON_DEADLINE_S}s" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "dockerd started (pid $dockerd_pid, log $_docker_state/dockerd.log)"
}

# Stops the daemon docker_up started (SIGTERM, then SIGKILL after the deadline) and puts the
# host back as it was; does nothing when docker_up found a daemon running. $1 is the step's
# exit status: when non-zero, the daemon's last lines are shown. Meant for an EXIT trap, so
# it never fails.
docker_down() {
  local status=${1:-0}
  [[ -n "$dockerd_pid" ]] || return 0
  kill -TERM "$dockerd_pid" 2>/dev/null || true
  local until=$((SECONDS + DOCKER_STOP_DEADLINE_S))
  while kill -0 "$dockerd_pid" 2>/dev/null && ((SECONDS < until)); do sleep 0.2; done
  if kill -0 "$dockerd_pid" 2>/dev/null; then
    echo "dockerd did not stop within ${DOCKER_STOP_DEADLINE_S}s; killing it" >&2
    kill -KILL "$dockerd_pid" 2>/dev/null || true
  fi
  wait "$dockerd_pid" 2>/dev/null || true
  if ((status != 0)); then
    echo "--- the daemon's last lines:" >&2
    tail -n 30 "$_docker_state/dockerd.log" >&2 || true
  fi
  # iptables-restore replaces the two tables whole, so this relies on nothing else editing
  # the firewall meanwhile: true in CI, which runs one step at a time.
  cat "$_docker_state/iptables.filter" "$_docker_state/iptables.nat" | iptables-restore || true
  echo "$_docker_ip_forward_before" >/proc/sys/net/ipv4/ip_forward || true
  if [[ "$_docker_docker0_before" == no ]] && ip link show docker0 >/dev/null 2>&1; then
    ip link delete docker0 || true
  fi
  dockerd_pid=""
}
