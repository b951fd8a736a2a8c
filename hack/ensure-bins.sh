#!/usr/bin/env bash
# Builds the binaries that the tests and the local factory run (kube-apiserver, etcd, and for the full
# factory kube-controller-manager, kube-scheduler, kubectl, kwok and the Kueue manager) from the Go module
# proxy. Versions are pinned by the modules under hack/tools/<name>; nothing is downloaded from release pages.
#
#   hack/ensure-bins.sh [name...]     default: kube-apiserver etcd
#
# The binaries go to $AIFACTORY_BIN_DIR (default: $HOME/.cache/aifactory-operator/bin), outside the repository.
# A stamp beside each binary records the hash of its pinning module; a binary whose stamp matches is not
# rebuilt, so a second run is a no-op. A lock file makes concurrent callers build one at a time.
# The last line printed on stdout is the bin folder (use it as KUBEBUILDER_ASSETS).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=$ROOT/hack/tools
BIN_DIR=${AIFACTORY_BIN_DIR:-$HOME/.cache/aifactory-operator/bin}
K8S_VERSION=v1.35.4
KUEUE_VERSION=v0.17.0
mkdir -p "$BIN_DIR"

log() { echo "[ensure-bins] $*" >&2; }

# module folder and package path for each binary
module_of() {
  case $1 in
    kube-apiserver | kube-controller-manager | kube-scheduler | kubectl) echo "k8s k8s.io/kubernetes/cmd/$1" ;;
    etcd) echo "etcd ." ;;
    kwok) echo "kwok sigs.k8s.io/kwok/cmd/kwok" ;;
    kueue) echo "kueue sigs.k8s.io/kueue/cmd/kueue" ;;
    controller-gen) echo "controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen" ;;
    golangci-lint) echo "golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint" ;;
    *) return 1 ;;
  esac
}

ldflags_of() {
  local minor
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  case $1 in
    kube-*|kubectl)
      echo "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1" \
        "-X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
        "-X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" ;;
    kueue) echo "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION" ;;
    *) echo "-s -w" ;;
  esac
}

build_one() {
  local name=$1 mod pkg dir want t0
  read -r mod pkg < <(module_of "$name") || { log "unknown binary: $name"; exit 2; }
  dir=$TOOLS/$mod
  want=$(find "$dir" -maxdepth 1 -type f -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-16)
  if [ -x "$BIN_DIR/$name" ] && [ "$(cat "$BIN_DIR/.$name.stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  t0=$(date +%s)
  log "building $name (module hack/tools/$mod)"
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "$(ldflags_of "$name")" \
    -o "$BIN_DIR/$name.tmp" "$pkg")
  mv "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
  echo "$want" > "$BIN_DIR/.$name.stamp"
  log "built $name in $(( $(date +%s) - t0 ))s"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(kube-apiserver etcd)

exec 9>"$BIN_DIR/.lock"
flock 9
for n in "${names[@]}"; do build_one "$n"; done
echo "$BIN_DIR"
