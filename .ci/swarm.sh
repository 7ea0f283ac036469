#!/usr/bin/env bash
# CI's swarm step: the lab on a real orchestrator. Install Docker when missing, start a daemon
# when none answers (.ci/docker.sh), build the shop's ten images (deploy/docker/
# build-images.sh) and the swarm's two (deploy/swarm/build-images.sh: the node, PostgreSQL),
# then run the swarm target's tests and a quick `shoplab compare --target swarm` on both
# builds: the lab makes a 3-node swarm of docker-in-docker nodes per build, gets the images
# onto them, and has Swarm itself roll, roll back, heal, scale, lose a node and drain one,
# invariants checked after each (compare exits non-zero when one is violated).
#
# Everything it creates carries its own names: the lab's nodes, networks and volumes start
# with shoplab-ci-<pid> (`--swarm-prefix`; the lab adds `-<build>-node-<i>` and labels them
# shoplab.swarm=<name>), the images are tagged ci-<pid>. On the way out, failed or not, it
# removes whatever of those is left (the lab removes its own when it ends normally) and stops
# the daemon it started; a daemon it found running it leaves be, and it touches no one
# else's containers, networks, volumes or images on a shared daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
# docker_install, docker_up, docker_down, and $DOCKER, the CLI to call.
source .ci/docker.sh

phase() { printf '\n--- swarm: %s  (%ss)\n' "$*" "$SECONDS"; }

work="$(mktemp -d)"
prefix="shoplab-ci-$$"
export SHOPLAB_TAG="ci-$$"
images=(monolith catalog inventory cart orders payments users recommendations gateway host
  shoplab swarm-node postgres)
timings=()

# Records how long the phase that started at $1 took, for the summary at the end.
took() { timings+=("$(printf '%-48s %4ss' "$2" "$((SECONDS - $1))")"); }

# Prints the names of the containers, networks or volumes ($1) of this run: named with its
# prefix, or labelled by the lab with a name that starts with it. Docker's own name filter
# matches anywhere in the name, so the prefix is checked here.
ours() {
  local kind=$1 name label
  local list=(ls --format '{{.Name}} {{.Label "shoplab.swarm"}}')
  if [[ "$kind" == container ]]; then
    list=(ls --all --format '{{.Names}} {{.Label "shoplab.swarm"}}')
  fi
  "$DOCKER" "$kind" "${list[@]}" 2>/dev/null |
    while read -r name label; do
      if [[ "$name" == "$prefix"* || "$label" == "$prefix"* ]]; then echo "$name"; fi
    done
}

cleanup() {
  local status=$?
  set +e
  # A second signal must not cut the cleanup short.
  trap '' INT TERM
  if "$DOCKER" info >/dev/null 2>&1; then
    phase "cleanup"
    # The nodes first: a swarm's stacks, services and overlay networks live inside them, so
    # removing a node container and its /var/lib/docker volume removes all of that too.
    ours container | xargs -r "$DOCKER" rm --force --volumes >/dev/null
    ours network | xargs -r "$DOCKER" network rm >/dev/null
    ours volume | xargs -r "$DOCKER" volume rm --force >/dev/null
    for image in "${images[@]}"; do
      "$DOCKER" image rm "shoplab/$image:$SHOPLAB_TAG" >/dev/null 2>&1
    done
    local left
    left="$(ours container; ours network; ours volume)"
    if [[ -n "$left" ]]; then
      echo "cleanup: could not remove: ${left//$'\n'/ }" >&2
      ((status != 0)) || status=1
    fi
  fi
  if [[ -n "$dockerd_pid" ]]; then
    phase "stop the docker daemon (pid $dockerd_pid)"
    docker_down "$status"
  fi
  rm -rf "$work"
  if ((status == 0)); then
    printf '\n--- swarm: time per part\n'
    printf '  %s\n' "${timings[@]}"
  fi
  exit "$status"
}
trap cleanup EXIT
# Interrupted or terminated, exit so the EXIT trap runs.
trap 'exit 130' INT
trap 'exit 143' TERM

phase "Docker"
started=$SECONDS
# No extras: this step needs no Compose.
# shellcheck disable=SC2119
docker_install
# results.json is checked with jq.
if ! command -v jq >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
fi
docker_up "$work"
"$DOCKER" version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'
# Swarm mode is part of the engine; a daemon without it (or one that cannot make a node)
# fails the lab with its own error, but the version says which engine that was.
"$DOCKER" info --format 'swarm: {{.Swarm.LocalNodeState}}, cgroup v{{.CgroupVersion}}, storage {{.Driver}}'
took "$started" "install and start Docker"

phase "the shop's images and the lab's (offline: static binaries, FROM scratch)"
started=$SECONDS
# The lab's own image too: the throughput sweep's generators run as tasks of the swarm. Here
# only one test runs generators, to see them work, so the lab's binary is built in the dev
# profile: its optimized build was the longest part of this step (deploy/docker/
# build-images.sh, SHOPLAB_LAB_PROFILE); the shop's images stay optimized.
SHOPLAB_LAB_IMAGE=1 SHOPLAB_LAB_PROFILE=dev bash deploy/docker/build-images.sh
took "$started" "static build + shop and lab images"

phase "the swarm's images (Debian base, node, PostgreSQL)"
started=$SECONDS
bash deploy/swarm/build-images.sh
took "$started" "swarm-node + postgres images"

# The swarm target's own tests, on real nodes: they must run here, not report themselves
# ignored (testkit fails a test whose listed need is missing). The test profile's binary,
# as CI's other lab runs: what is checked is what Swarm did.
phase "the lab's swarm target: its tests on a real swarm"
started=$SECONDS
SHOPLAB_TEST_REQUIRE=docker-images,swarm SHOPLAB_TEST_SWARM_TAG="$SHOPLAB_TAG" \
  SHOPLAB_TEST_SWARM_PREFIX="$prefix-test" \
  cargo test -p shoplab --test environment swarm::
took "$started" "swarm target tests"

# `--swarm-manager`: the lab on an existing swarm, here this engine made a one-node swarm by
# the test (the daemon is this step's own, or one found running and in no swarm; the test
# leaves the swarm again, and refuses an engine that is a worker of another). Run alone,
# after the tests above: it changes the engine's own state, which they run beside. On that
# same swarm it then runs one topology between the builds (browse-buy, its stack rendered
# from its generated compose file, a kill Swarm heals and a short step of load): the swarm
# and the images are already there, so it costs no second swarm.
phase "the lab on an existing swarm (this engine's, through its manager)"
started=$SECONDS
SHOPLAB_TEST_HOST_SWARM=1 SHOPLAB_TEST_REQUIRE=swarm,host-swarm \
  SHOPLAB_TEST_SWARM_TAG="$SHOPLAB_TAG" SHOPLAB_TEST_SWARM_PREFIX="$prefix-host" \
  cargo test -p shoplab --test environment swarm::an_existing_swarm
took "$started" "existing swarm test"

# The experiments where the orchestrator acts: deploys (rolling, recreate, the automatic
# rollback), faults (kills Swarm heals), scale (Swarm adds the replica, the balancer spreads),
# nodes (a node lost, one drained). The throughput sweep is left out: it measures the shop,
# not the orchestrator, and the local target's run above already measures it; the swarm
# tests above run the generators as tasks of the swarm.
phase "the lab's swarm target: a quick comparison of both builds on 3-node swarms"
started=$SECONDS
cargo run -p shoplab -- compare --target swarm --quick --image-tag "$SHOPLAB_TAG" \
  --experiments deploy,faults,scale,nodes --swarm-prefix "$prefix" --out "$work/swarm-run"
results="$work/swarm-run/results.json"
# Fails the step with $2 unless the jq filter $1 holds for results.json.
holds() { jq -e "$1" "$results" >/dev/null || { echo "results.json: $2" >&2; exit 1; }; }
# The run is the swarm's (not a fallback to another target), its environment stamp names the
# nodes, and each build ran every experiment asked for; Swarm lost and drained a node under
# each, and the balancer counted requests on both replicas of the scaled component.
holds '.settings.target == "swarm"' "target is not swarm"
holds '(.settings.platform_detail // "") | test("node")' \
  "the platform detail does not name the swarm's nodes"
for build in monolith micro; do
  for experiment in deploy faults scale nodes; do
    holds "any(.experiments[]; .build == \"$build\" and .findings.experiment == \"$experiment\")" \
      "$build ran no $experiment experiment"
  done
  holds "[.experiments[] | select(.build == \"$build\" and .findings.experiment == \"nodes\")
    | .findings.events[].kind] | (any(. == \"loss\") and any(. == \"drain\")
      and any(. == \"drain-with-spares\"))" \
    "$build: the nodes experiment did not lose a node, drain one, and drain one with spares"
  holds "[.experiments[] | select(.build == \"$build\" and .findings.experiment == \"scale\")
    | .findings.spread.replicas[] | select(.[1] > 0)] | length >= 2" \
    "$build: the scale experiment's spread has fewer than two replicas that served"
done
holds '.valid' "an invariant was violated"
test -s "$work/swarm-run/report.html"
test -s "$work/swarm-run/report.md"
jq -r '.settings.platform_detail' "$results"
took "$started" "swarm target: quick compare, both builds"
