#!/usr/bin/env bash
# Builds the binaries that the tests and the local factory run (kube-apiserver, etcd, and for the full
# factory kube-controller-manager, kube-scheduler, kubectl, kwok and the Kueue manager; helm for the chart's
# tests) from the Go module proxy. Versions are pinned by the modules under hack/tools/<name>; nothing is
# downloaded from release pages.
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
    helm) echo "helm helm.sh/helm/v3/cmd/helm" ;;
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
    helm) echo "-s -w -X helm.sh/helm/v3/internal/version.version=v3.22.0" ;;
    *) echo "-s -w" ;;
  esac
}

# The Kueue manager reads its metrics certificate from the fixed folder /etc/kueue/metrics/certs when its
# internal certificate management is off, as it must be outside a cluster. Kueue's own main package is copied
# from the module cache into a build folder (never into the repository) with that one path read from
# $KUEUE_METRICS_CERT_DIR instead; everything else is the released code at the pinned version.
prepare_kueue() {
  local src=$1 kd
  # The module is downloaded here if the cache lacks it: on a fresh machine nothing before this step has.
  kd=$(cd "$ROOT" && go run ./hack/moddir -C "$TOOLS/kueue" sigs.k8s.io/kueue)
  [ -d "$kd/cmd/kueue" ] || { log "no cmd/kueue in the Kueue module folder '$kd'"; exit 1; }
  rm -rf "$src" && mkdir -p "$src"
  cp "$TOOLS/kueue/go.mod" "$TOOLS/kueue/go.sum" "$src/"
  find "$kd/cmd/kueue" -maxdepth 1 -name '*.go' ! -name '*_test.go' -exec cp {} "$src/" \;
  chmod -R u+w "$src"
  grep -q 'metricsCertPath := "/etc/kueue/metrics/certs"' "$src/main.go" || { log "kueue main.go changed: update prepare_kueue"; exit 1; }
  sed -i 's|metricsCertPath := "/etc/kueue/metrics/certs"|metricsCertPath := cmp.Or(os.Getenv("KUEUE_METRICS_CERT_DIR"), "/etc/kueue/metrics/certs")|' "$src/main.go"
  sed -i '0,/^import (/s//import (\n\t"cmp"/' "$src/main.go"
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
  if [ "$name" = kueue ]; then
    prepare_kueue "$BIN_DIR/.src/kueue"
    dir=$BIN_DIR/.src/kueue pkg=.
  fi
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
