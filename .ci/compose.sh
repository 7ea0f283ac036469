#!/usr/bin/env bash
# CI's container step: install Docker and Compose when missing, start a Docker daemon when
# none answers, build the ten images offline (deploy/docker/build-images.sh), then bring up
# each profile of docker-compose.yml in turn, run the contract suite against it, and take it
# down. Whatever this script started — containers, networks, volumes, images, the daemon —
# it removes or stops on the way out, failed or not; a daemon it found running it leaves be.
#
# Then the lab's compose target: one short experiment of each kind that needs real containers
# (`shoplab compare --target compose --quick --experiments deploy,faults`: rolling and recreate
# deploys of every component, a rollback, a storm, and kills under load, invariants checked
# after each), on both builds.
#
# Everything it creates carries its own names (compose projects shoplab-ci-<pid> and
# shoplab-ci-<pid>-lab-*, image tag ci-<pid>), so it touches no one else's containers or images
# on a shared daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
# docker_install, docker_up, docker_down, and $DOCKER, the CLI to call.
source .ci/docker.sh

phase() { printf '\n--- containers: %s  (%ss)\n' "$*" "$SECONDS"; }

# A fixed time for the containers to become healthy, so a wedged container fails the step
# instead of the CI's 90 minutes (.ci/docker.sh has the daemon's own deadlines).
readonly HEALTHY_DEADLINE_S=120

work="$(mktemp -d)"
project="shoplab-ci-$$"
export SHOPLAB_TAG="ci-$$"
export SHOPLAB_ADMIN_TOKEN="ci-admin-$$-$RANDOM$RANDOM"
export SHOPLAB_METRICS_TOKEN="ci-metrics-$$-$RANDOM$RANDOM"
export SHOPLAB_TOKEN_SECRET="ci-secret-$$-$RANDOM$RANDOM"
# The micro profile's service keys, one key pair per process (docker-compose.yml, "Service
# keys"): without them its processes refuse to start.
eval "$(cargo run -q -p shoplab -- service-keys)"
images=(monolith catalog inventory cart orders payments users recommendations gateway host)
compose=(docker-compose --project-name "$project" --file docker-compose.yml)
timings=()
declare -A totals=()

# Records how long the phase that started at $1 took, for the summary at the end.
took() { timings+=("$(printf '%-44s %4ss' "$2" "$((SECONDS - $1))")"); }

cleanup() {
  local status=$?
  set +e
  # A second signal must not cut the cleanup short.
  trap '' INT TERM
  if "$DOCKER" info >/dev/null 2>&1; then
    phase "cleanup"
    "${compose[@]}" --profile monolith --profile micro down --volumes --remove-orphans \
      --timeout 10 >/dev/null 2>&1
    # Whatever `down` could not remove (a failed `up` can leave a half-made project), and what
    # an interrupted lab run left (it takes its own projects down when it ends normally).
    local name label
    for name in "$project" "$project-lab-monolith" "$project-lab-micro"; do
      label="label=com.docker.compose.project=$name"
      "$DOCKER" ps -aq --filter "$label" | xargs -r "$DOCKER" rm -f >/dev/null
      "$DOCKER" network ls -q --filter "$label" | xargs -r "$DOCKER" network rm >/dev/null
      "$DOCKER" volume ls -q --filter "$label" | xargs -r "$DOCKER" volume rm >/dev/null
    done
    for image in "${images[@]}"; do
      "$DOCKER" image rm "shoplab/$image:$SHOPLAB_TAG" >/dev/null 2>&1
    done
  fi
  if [[ -n "$dockerd_pid" ]]; then
    phase "stop the docker daemon (pid $dockerd_pid)"
    docker_down "$status"
  fi
  rm -rf "$work"
  if ((status == 0)); then
    printf '\n--- containers: time per part\n'
    printf '  %s\n' "${timings[@]}"
  fi
  exit "$status"
}
trap cleanup EXIT
# Interrupted or terminated, exit so the EXIT trap runs.
trap 'exit 130' INT
trap 'exit 143' TERM

phase "Docker and Compose"
started=$SECONDS
docker_install compose
echo "compose $(docker-compose version --short)"
docker_up "$work"

"$DOCKER" version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'
took "$started" "install and start Docker"

# The file must stay readable by Compose v1.29 (this one) as well as v2.
"${compose[@]}" --profile monolith --profile micro config --quiet

phase "images (offline path: static binaries, FROM scratch)"
started=$SECONDS
bash deploy/docker/build-images.sh
took "$started" "static build + images"

phase "the contract suite's test binary"
started=$SECONDS
cargo test -p contract --test contract --no-run
took "$started" "contract test build"

# The first port at or above $1 that nothing on 127.0.0.1 listens on.
free_port() {
  local port=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  echo "$port"
}

# Waits until every container of the profile reports healthy.
wait_healthy() {
  local profile=$1 until=$((SECONDS + HEALTHY_DEADLINE_S)) ids id health pending
  ids=$("${compose[@]}" --profile "$profile" ps -q)
  [[ -n "$ids" ]] || { echo "profile $profile started no container" >&2; return 1; }
  while :; do
    pending=()
    for id in $ids; do
      health=$("$DOCKER" inspect --format '{{.Name}} {{.State.Health.Status}}' "$id")
      [[ "$health" == *" healthy" ]] || pending+=("$health")
    done
    ((${#pending[@]} == 0)) && return 0
    if ((SECONDS >= until)); then
      echo "not healthy after ${HEALTHY_DEADLINE_S}s: ${pending[*]}" >&2
      "${compose[@]}" --profile "$profile" logs --tail 30 >&2
      return 1
    fi
    sleep 0.5
  done
}

# Brings the profile up, runs the contract suite against its published ports, takes it down.
# $2 says where the admin API is: on the public port (monolith) or its own (gateway).
run_profile() {
  local profile=$1 admin=$2 started
  phase "profile $profile: up"
  started=$SECONDS
  SHOPLAB_PORT=$(free_port 18080)
  export SHOPLAB_PORT
  SHOPLAB_ADMIN_PORT=$(free_port $((SHOPLAB_PORT + 1)))
  export SHOPLAB_ADMIN_PORT
  "${compose[@]}" --profile "$profile" up --detach --no-build
  wait_healthy "$profile"
  took "$started" "profile $profile: up and healthy"
  # The two builds must get the same total CPU and memory (docker-compose.yml, "Resources"):
  # the sums of what the engine actually applied, compared once both profiles have run.
  totals[$profile]=$(
    for id in $("${compose[@]}" --profile "$profile" ps -q); do
      "$DOCKER" inspect --format '{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}' "$id"
    done | awk '{ cpus += $1; memory += $2 } END { printf "%.2f CPU, %d MiB", cpus / 1e9, memory / 1048576 }'
  )
  echo "profile $profile: limits total ${totals[$profile]}"

  phase "profile $profile: contract suite"
  started=$SECONDS
  local admin_url="http://127.0.0.1:$SHOPLAB_PORT"
  if [[ "$admin" == own-port ]]; then admin_url="http://127.0.0.1:$SHOPLAB_ADMIN_PORT"; fi
  SHOPLAB_CONTRACT_BASE_URL="http://127.0.0.1:$SHOPLAB_PORT" \
    SHOPLAB_CONTRACT_ADMIN_URL="$admin_url" \
    SHOPLAB_CONTRACT_ADMIN_TOKEN="$SHOPLAB_ADMIN_TOKEN" \
    SHOPLAB_CONTRACT_METRICS_TOKEN="$SHOPLAB_METRICS_TOKEN" \
    SHOPLAB_CONTRACT_TOKEN_SECRET="$SHOPLAB_TOKEN_SECRET" \
    cargo test -p contract --test contract 2>&1 | tee "$work/contract-$profile.log"
  local passed failed
  passed=$(sed -n 's/^test result: .* \([0-9]*\) passed.*/\1/p' "$work/contract-$profile.log")
  failed=$(sed -n 's/^test result: .* \([0-9]*\) failed.*/\1/p' "$work/contract-$profile.log")
  took "$started" "profile $profile: contract ($passed passed, $failed failed)"

  # The restart policy can hide a crash from the suite (a case after it may pass again), so
  # look: a container that restarted had its process crash or OOM-killed under the suite.
  local id restarts
  for id in $("${compose[@]}" --profile "$profile" ps -q); do
    restarts=$("$DOCKER" inspect --format '{{.RestartCount}}' "$id")
    if ((restarts != 0)); then
      echo "$("$DOCKER" inspect --format '{{.Name}}' "$id") restarted $restarts time(s)" >&2
      "${compose[@]}" --profile "$profile" logs --tail 50 >&2
      return 1
    fi
  done

  phase "profile $profile: down"
  started=$SECONDS
  "${compose[@]}" --profile "$profile" down --volumes --timeout 10
  took "$started" "profile $profile: down"
}

run_profile monolith public-port
run_profile micro own-port

if [[ "${totals[monolith]}" != "${totals[micro]}" ]]; then
  echo "unequal limits: monolith ${totals[monolith]}, micro ${totals[micro]}" >&2
  exit 1
fi

# The lab on real containers: deploys and kills under load on both builds, the invariants
# checked after each (compare exits non-zero when one is violated). The test profile's
# binary, as CI's other lab run: what is checked here is what the containers did. Among the
# tests, one topology between the builds (browse-buy from the compose file the lab generates
# for it, on the images built above: a sale, the group of payments killed and restarted by
# the engine, the audit).
phase "the lab's compose target: its tests on real containers"
started=$SECONDS
SHOPLAB_TEST_REQUIRE=docker-images SHOPLAB_TEST_COMPOSE_TAG="$SHOPLAB_TAG" \
  cargo test -p shoplab --test environment compose::
took "$started" "compose target tests"

phase "the lab's compose target: deploys and faults under load, both builds"
started=$SECONDS
cargo run -p shoplab -- compare --target compose --quick --experiments deploy,faults \
  --image-tag "$SHOPLAB_TAG" --compose-project "$project-lab" --out "$work/compose-run"
grep -q '"target": *"compose"' "$work/compose-run/results.json"
test -s "$work/compose-run/report.html"
took "$started" "compose target: deploy + faults, both builds"

