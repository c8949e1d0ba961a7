#!/usr/bin/env bash
# Prints the path of the Helm CLI that lints and renders the chart
# (deploy/helm), installing it first when the user cache does not have it
# yet: Helm is a Go module, so `go install` builds it from the Go module
# proxy with the local Go toolchain into
# ${XDG_CACHE_HOME:-$HOME/.cache}/intelliauth-controlplane/bin/helm-<version>.
# The chart's Go test (deploy/helm_test.go) and .ci/run both call this
# script, so there is one recipe. Concurrent callers wait for one build
# (flock); the binary appears under its name only once complete (rename).
set -euo pipefail

version="${HELM_VERSION:-3.21.4}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/intelliauth-controlplane/bin"
bin="$cache/helm-$version"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$bin.lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

# Outside any module, so the build is Helm's own and no go.mod or workspace
# around the caller is touched; GOBIN is a private directory whose `helm`
# is then renamed into the cache.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "helm.sh: installing Helm $version into $bin (a few minutes, once)" >&2
start=$(date +%s)
# The link flags are those of Helm's own Makefile: its version, and the
# Kubernetes version it renders and lints for when no cluster is asked
# (without them, v1.20, which the chart's kubeVersion refuses): the minor
# of the k8s.io modules it is built with.
k8s=$(cd "$work" && GOFLAGS= GOWORK=off go mod download -json "helm.sh/helm/v3@v$version" |
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' | xargs sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p')
if [ -z "$k8s" ]; then
  echo "helm.sh: no k8s.io/client-go version in Helm $version's go.mod" >&2
  exit 1
fi
ldflags="-w -s -X helm.sh/helm/v3/internal/version.version=v$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags="$ldflags -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s"
done
(cd "$work" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOWORK=off GOBIN="$work/bin" \
  go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@v$version")
mv "$work/bin/helm" "$bin.tmp.$$"
mv "$bin.tmp.$$" "$bin"
echo "helm.sh: installed in $(($(date +%s) - start)) s" >&2
echo "$bin"
