#!/usr/bin/env bash
# The offline path: builds shoplab's ten images without pulling anything. The binaries are
# compiled here as static executables and copied into `FROM scratch` images
# (Dockerfile.offline). CI builds its images this way.
#
#   deploy/docker/build-images.sh                 # shoplab/<name>:latest
#   SHOPLAB_TAG=dev deploy/docker/build-images.sh # shoplab/<name>:dev
#   SHOPLAB_LAB_IMAGE=1 deploy/docker/build-images.sh
#                                                 # also shoplab/shoplab, the lab itself
#
# Settings (environment):
#   SHOPLAB_TAG                the images' tag (default latest)
#   SHOPLAB_IMAGES_TARGET_DIR  cargo's target folder for the static build (default
#                              target/static: its own, since the flags differ from a normal
#                              build's and would otherwise rebuild everything each time)
#   SHOPLAB_LAB_IMAGE          1: also the image of the lab itself, shoplab/shoplab, for
#                              the Kubernetes load Job (off by default: it compiles the
#                              whole lab, which neither compose profile runs)
#   SHOPLAB_LAB_PROFILE        the cargo profile of the lab's binary in that image: release
#                              (the default: its generators measure) or dev, without debug
#                              information, for CI, where the image only has to work: the
#                              lab's optimized build of its own was the longest part of CI's
#                              swarm step, the dev one about half as long (deploy/docker/
#                              README.md)
set -euo pipefail
cd "$(dirname "$0")/../.."

tag="${SHOPLAB_TAG:-latest}"
target_dir="${SHOPLAB_IMAGES_TARGET_DIR:-target/static}"
triple=x86_64-unknown-linux-gnu

# image name -> binary; the image names are the compose services' names.
declare -A binary_of=(
  [monolith]=monolith
  [catalog]=micro-catalog
  [inventory]=micro-inventory
  [cart]=micro-cart
  [orders]=micro-orders
  [payments]=micro-payments
  [users]=micro-users
  [recommendations]=micro-recommendations
  [gateway]=micro-gateway
  [host]=micro-host
  [shoplab]=shoplab
)
# `host` runs any group of contexts (`micro-host --group ...`): a topology's processes.
images=(monolith catalog inventory cart orders payments users recommendations gateway host)
if [[ "${SHOPLAB_LAB_IMAGE:-0}" == 1 ]]; then images+=(shoplab); fi

phase() { printf '\n--- %s  (%ss)\n' "$*" "$SECONDS"; }

# `+crt-static` makes glibc binaries that need no shared library, so they run in an empty
# image; static glibc still resolves container DNS names. `--target` keeps the flag off build
# scripts and proc-macros, which must stay dynamic. The release profile is the workspace's
# (opt-level 3, as benchmarked images must be); only its line tables are dropped, since
# nothing in a scratch image reads them and linking them costs CI time.
static_build() {
  local profile=$1
  shift
  CARGO_TARGET_DIR="$target_dir" \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_DEV_DEBUG=false \
    RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --profile "$profile" --locked --target "$triple" "$@"
}
lab_profile="${SHOPLAB_LAB_PROFILE:-release}"
case "$lab_profile" in
  release) lab_dir=release ;;
  dev) lab_dir=debug ;;
  *)
    echo "build-images: SHOPLAB_LAB_PROFILE must be release or dev, not '$lab_profile'" >&2
    exit 2
    ;;
esac

phase "static binaries (cargo build --release, $target_dir)"
packages=()
for image in "${images[@]}"; do
  if [[ "$image" != shoplab ]]; then packages+=(-p "${binary_of[$image]}"); fi
done
static_build release "${packages[@]}"
# The lab on its own: cargo unifies features over one build's packages, and the lab's load
# generator turns on reqwest's TLS, whose client then refuses to start in an image without
# CA certificates. Built with the shop's packages, that reached the shop's own HTTP clients
# (the gateway and orders exited at start on the swarm, 2026-12-05); apart, the shop's
# binaries are the same whether or not the lab's image is built.
if [[ "${SHOPLAB_LAB_IMAGE:-0}" == 1 ]]; then
  phase "the lab's static binary (a build of its own, profile $lab_profile)"
  static_build "$lab_profile" -p shoplab
fi

phase "probe (rustc, std only)"
context="$target_dir/image-context"
rm -rf "$context"
mkdir -p "$context/bin" "$context/rootfs/data" "$context/rootfs/tmp" "$context/certs"
chmod 1777 "$context/rootfs/tmp"
# The lab's image needs the CA certificates its HTTP client loads at start (reqwest with the
# platform verifier refuses to start without any), though the shop speaks plain HTTP.
if [[ "${SHOPLAB_LAB_IMAGE:-0}" == 1 ]]; then
  bundle=/etc/ssl/certs/ca-certificates.crt
  if [[ ! -s "$bundle" ]]; then
    echo "build-images: $bundle is missing; install ca-certificates (apt-get install ca-certificates)" >&2
    exit 1
  fi
  cp "$bundle" "$context/certs/"
fi
rustc --edition 2024 -C opt-level=s -C panic=abort -C strip=symbols \
  -C target-feature=+crt-static --target "$triple" \
  deploy/docker/probe.rs -o "$context/probe"

for image in "${images[@]}"; do
  binary="$target_dir/$triple/release/${binary_of[$image]}"
  if [[ "$image" == shoplab ]]; then binary="$target_dir/$triple/$lab_dir/shoplab"; fi
  # A dynamic executable would fail in the image with a bare "no such file or directory".
  if readelf -d "$binary" | grep '(NEEDED)' >/dev/null; then
    echo "build-images: $binary is dynamically linked" >&2
    exit 1
  fi
  cp "$binary" "$context/bin/"
done

phase "images (docker build, Dockerfile.offline)"
log="$context/docker-build.log"
for image in "${images[@]}"; do
  # The output only when it fails: a client newer than the daemon also warns on every build
  # that the legacy builder is deprecated, which is all the builder there is without buildx.
  if ! docker build -f deploy/docker/Dockerfile.offline --target "$image" \
    -t "shoplab/$image:$tag" "$context" >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  printf '%-28s %s\n' "shoplab/$image:$tag" \
    "$(docker image inspect --format '{{.Size}}' "shoplab/$image:$tag" | numfmt --to=iec-i --suffix=B)"
done
phase "images built"
