#!/usr/bin/env bash
# Checks the manifests as a cluster would read them, without a cluster:
#
#   deploy/kubernetes/check.sh
#
# `kubectl kustomize` builds each entry point (its own kustomize; no cluster is contacted),
# and kubernetes-validate (PyPI, bundled API schemas) checks every object it built, strictly
# (an unknown field is an error), against Kubernetes 1.30, the oldest release whose preStop
# has the `sleep` action, and 1.34. The Rust test loadtest/tests/shoplab/kubernetes.rs holds
# the same files to docker-compose.yml; this checks that Kubernetes would accept them.
#
# Needs kubectl and python3 with venv. The validator is installed once into a venv under
# target/ (SHOPLAB_KUBE_VALIDATE_VENV moves it).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v kubectl >/dev/null; then
  echo "deploy/kubernetes/check.sh: kubectl is not on PATH" >&2
  exit 1
fi
venv="${SHOPLAB_KUBE_VALIDATE_VENV:-../../target/kube-validate}"
if [[ ! -x "$venv/bin/kubernetes-validate" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet kubernetes-validate==1.37.0
fi

built="$(mktemp -d)"
trap 'rm -rf "$built"' EXIT
entries=(overlays/monolith overlays/micro load/monolith load/micro)
for entry in "${entries[@]}"; do
  kubectl kustomize "$entry" >"$built/${entry//\//-}.yaml"
done
for version in 1.30.0 1.34.0; do
  "$venv/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$version" "$built"/*.yaml
done
echo "deploy/kubernetes: ${#entries[@]} kustomizations built, $(cat "$built"/*.yaml | grep -c '^kind:') objects valid against Kubernetes 1.30 and 1.34"
