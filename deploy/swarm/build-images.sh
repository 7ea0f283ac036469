#!/usr/bin/env bash
# Builds, offline, the two images a Docker Swarm of shoplab needs beyond the shop's nine
# (deploy/docker/build-images.sh builds those):
#
#   shoplab/debian-base:bookworm  Debian 12, minbase, made by debootstrap + docker import
#                                 (no image can be pulled here); built once, kept, since it is
#                                 slow (about 2 minutes), and the two below stand on it
#   shoplab/swarm-node:$TAG       a swarm node: Debian's Docker engine in a container
#                                 (Dockerfile.node), for a multi-node swarm on one machine
#   shoplab/postgres:$TAG         the stack's PostgreSQL, a database per process
#                                 (Dockerfile.postgres)
#
#   deploy/swarm/build-images.sh                  # tag latest
#   SHOPLAB_TAG=dev deploy/swarm/build-images.sh  # tag dev
#
# Settings (environment):
#   SHOPLAB_TAG            the images' tag (default latest; the base is always :bookworm)
#   SHOPLAB_DEBIAN_MIRROR  where debootstrap and apt fetch packages (default
#                          http://deb.debian.org/debian)
#   SHOPLAB_REBUILD_BASE   1: make the base image again even when it exists
#   DOCKER                 the docker CLI (default Debian's /usr/bin/docker when present)
set -euo pipefail
cd "$(dirname "$0")/../.."

tag="${SHOPLAB_TAG:-latest}"
mirror="${SHOPLAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
base=shoplab/debian-base:bookworm
# Debian's CLI (20.10) before a newer one that may come first on PATH: the newer one warns
# on every build that the legacy builder is deprecated, the only builder there is here.
if [[ -z "${DOCKER:-}" ]]; then
  if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi

phase() { printf '\n--- %s  (%ss)\n' "$*" "$SECONDS"; }

if ! "$DOCKER" info >/dev/null 2>&1; then
  echo "build-images: no docker daemon answers ($DOCKER info failed); start one first" >&2
  exit 1
fi

work="$(mktemp -d /var/tmp/shoplab-swarm-images.XXXXXX)"
trap 'rm -rf "$work"' EXIT

if [[ "${SHOPLAB_REBUILD_BASE:-0}" != 1 ]] && "$DOCKER" image inspect "$base" >/dev/null 2>&1; then
  phase "$base exists: kept (SHOPLAB_REBUILD_BASE=1 makes it again)"
else
  phase "$base (debootstrap --variant=minbase bookworm, then docker import)"
  if ! command -v debootstrap >/dev/null; then
    echo "installing debootstrap with apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  rootfs="$work/rootfs"
  if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    echo "build-images: debootstrap failed (full log above, last lines)" >&2
    exit 1
  fi
  # As Debian's own container images do: package scripts must not start services inside a
  # `docker build` (there is no init to stop them again), and the download cache and package
  # lists are dead weight in every layer above.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod +x "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
  # The engine provides /dev, /proc and /sys itself; device nodes in the image would only
  # shadow them.
  tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -C "$rootfs" -c . |
    "$DOCKER" import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["/bin/bash"]' \
      --message "debootstrap --variant=minbase bookworm $mirror" \
      - "$base" >/dev/null
fi

# The build context is deploy/: the PostgreSQL image takes its databases from
# deploy/docker/postgres-init.sql, the same file the compose variant uses.
for image in swarm-node postgres; do
  case "$image" in
    swarm-node) dockerfile=deploy/swarm/Dockerfile.node ;;
    postgres) dockerfile=deploy/swarm/Dockerfile.postgres ;;
  esac
  phase "shoplab/$image:$tag ($dockerfile)"
  if ! "$DOCKER" build --file "$dockerfile" --build-arg "BASE=$base" \
    --tag "shoplab/$image:$tag" deploy >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    echo "build-images: building shoplab/$image:$tag failed (its output above)" >&2
    exit 1
  fi
done

phase "images built"
for image in "$base" "shoplab/swarm-node:$tag" "shoplab/postgres:$tag"; do
  printf '%-32s %s\n' "$image" \
    "$("$DOCKER" image inspect --format '{{.Size}}' "$image" | numfmt --to=iec-i --suffix=B)"
done
